from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from labelhub.accounts.api import (
    InvitationAcceptView,
    InvitationViewSet,
    MemberViewSet,
    OrganizationViewSet,
    PasswordChangeView,
    PreferencesView,
    SignupView,
    TokensRevokeAllView,
    TokenView,
)
from labelhub.core import health
from labelhub.core.throttles import login_throttled
from labelhub.datasets.api import ExportViewSet, ImportViewSet, ProjectExportView, ProjectImportView
from labelhub.datasets.video_api import VideoExportView, VideoImportView
from labelhub.images.api import (
    ImageTilesDescriptorView,
    ImageTileView,
    ImageViewSet,
    ProjectImageImportView,
    ProjectImageUploadView,
)
from labelhub.labeling.api import (
    CommentViewSet,
    ProjectNextTaskView,
    ProjectTaskListView,
    TaskViewSet,
)
from labelhub.learning.api import (
    EvaluationView,
    ModelServiceTrainView,
    ModelVersionView,
    ProjectEvaluationsView,
    ProjectModelsView,
    ProjectTrainView,
)
from labelhub.predictions.api import (
    ImageEmbeddingView,
    ImagePolygonizeView,
    ImagePresegmentView,
    ImageSegmentView,
    PredictionViewSet,
    ProjectEmbeddingsView,
    ProjectPresegmentView,
    SamDecoderView,
)
from labelhub.predictions.model_services_api import (
    ModelServiceCheckView,
    ModelServiceConfigView,
    ModelServicePredictView,
    ModelServiceView,
    ProjectModelServicesView,
    ServiceImageView,
)
from labelhub.projects.api import ProjectMemberViewSet, ProjectViewSet
from labelhub.qa.api import ProjectMetricsView, ProjectQualityView, TaskFeedbackView, TaskVideoMetricsView
from labelhub.tracking.api import PropagationViewSet, TaskPropagateView
from labelhub.videos.api import ProjectVideoUploadView, VideoViewSet
from labelhub.webhooks.api import WebhookViewSet

router = DefaultRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register(r"organizations/(?P<organization_pk>\d+)/members", MemberViewSet, basename="member")
router.register(
    r"organizations/(?P<organization_pk>\d+)/invitations", InvitationViewSet, basename="invitation"
)
router.register("projects", ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>\d+)/members", ProjectMemberViewSet, basename="project-member")
router.register("images", ImageViewSet, basename="image")
router.register("videos", VideoViewSet, basename="video")
router.register("propagations", PropagationViewSet, basename="propagation")
router.register("tasks", TaskViewSet, basename="task")
router.register("comments", CommentViewSet, basename="comment")
router.register("predictions", PredictionViewSet, basename="prediction")
router.register("exports", ExportViewSet, basename="export")
router.register("imports", ImportViewSet, basename="import")
router.register("webhooks", WebhookViewSet, basename="webhook")

api_v1 = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("auth/token/revoke-all/", TokensRevokeAllView.as_view(), name="auth-token-revoke-all"),
    path("auth/password/", PasswordChangeView.as_view(), name="auth-password"),
    path("auth/signup/", SignupView.as_view(), name="auth-signup"),
    path("auth/me/preferences/", PreferencesView.as_view(), name="auth-preferences"),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path(
        "projects/<int:project_pk>/images/upload/",
        ProjectImageUploadView.as_view(),
        name="project-image-upload",
    ),
    path(
        "projects/<int:project_pk>/videos/upload/",
        ProjectVideoUploadView.as_view(),
        name="project-video-upload",
    ),
    path("videos/<int:video_pk>/export/", VideoExportView.as_view(), name="video-export"),
    path("videos/<int:video_pk>/import/", VideoImportView.as_view(), name="video-import"),
    path("tasks/<int:task_pk>/video-metrics/", TaskVideoMetricsView.as_view(), name="task-video-metrics"),
    path("tasks/<int:task_pk>/propagate/", TaskPropagateView.as_view(), name="task-propagate"),
    path(
        "projects/<int:project_pk>/images/import/",
        ProjectImageImportView.as_view(),
        name="project-image-import",
    ),
    path("images/<int:image_pk>/tiles/", ImageTilesDescriptorView.as_view(), name="image-tiles"),
    path(
        "images/<int:image_pk>/tiles/<int:level>/<int:col>_<int:row>.jpg",
        ImageTileView.as_view(),
        name="image-tile",
    ),
    path("images/<int:image_pk>/segment/", ImageSegmentView.as_view(), name="image-segment"),
    path("images/<int:image_pk>/embedding/", ImageEmbeddingView.as_view(), name="image-embedding"),
    path("images/<int:image_pk>/polygonize/", ImagePolygonizeView.as_view(), name="image-polygonize"),
    path("models/sam/decoder.onnx", SamDecoderView.as_view(), name="sam-decoder"),
    path("images/<int:image_pk>/presegment/", ImagePresegmentView.as_view(), name="image-presegment"),
    path("projects/<int:project_pk>/embeddings/", ProjectEmbeddingsView.as_view(), name="project-embeddings"),
    path("projects/<int:project_pk>/presegment/", ProjectPresegmentView.as_view(), name="project-presegment"),
    path("projects/<int:project_pk>/next-task/", ProjectNextTaskView.as_view(), name="project-next-task"),
    path("projects/<int:project_pk>/tasks/", ProjectTaskListView.as_view(), name="project-tasks"),
    path("projects/<int:project_pk>/metrics/", ProjectMetricsView.as_view(), name="project-metrics"),
    path("projects/<int:project_pk>/quality/", ProjectQualityView.as_view(), name="project-quality"),
    path("tasks/<int:task_pk>/feedback/", TaskFeedbackView.as_view(), name="task-feedback"),
    path("projects/<int:project_pk>/exports/", ProjectExportView.as_view(), name="project-exports"),
    path("projects/<int:project_pk>/imports/", ProjectImportView.as_view(), name="project-imports"),
    path("projects/<int:project_pk>/models/", ProjectModelsView.as_view(), name="project-models"),
    path("projects/<int:project_pk>/models/train/", ProjectTrainView.as_view(), name="project-models-train"),
    path("models/<int:version_pk>/", ModelVersionView.as_view(), name="model-version"),
    path(
        "projects/<int:project_pk>/evaluations/", ProjectEvaluationsView.as_view(), name="project-evaluations"
    ),
    path("evaluations/<int:evaluation_pk>/", EvaluationView.as_view(), name="evaluation"),
    path(
        "projects/<int:project_pk>/model-services/",
        ProjectModelServicesView.as_view(),
        name="project-model-services",
    ),
    path(
        "projects/<int:project_pk>/model-services/<int:service_pk>/",
        ModelServiceView.as_view(),
        name="model-service",
    ),
    path(
        "projects/<int:project_pk>/model-services/<int:service_pk>/check/",
        ModelServiceCheckView.as_view(),
        name="model-service-check",
    ),
    path(
        "projects/<int:project_pk>/model-services/<int:service_pk>/predict/",
        ModelServicePredictView.as_view(),
        name="model-service-predict",
    ),
    path(
        "projects/<int:project_pk>/label-studio-config/",
        ModelServiceConfigView.as_view(),
        name="project-label-studio-config",
    ),
    path(
        "projects/<int:project_pk>/model-services/<int:service_pk>/train/",
        ModelServiceTrainView.as_view(),
        name="model-service-train",
    ),
    path("model-services/images/<str:token>/", ServiceImageView.as_view(), name="model-service-image"),
    path("", include(router.urls)),
]

urlpatterns = [
    # The admin's sign-in under the API's `login` throttle (password guessing), ahead of the admin's URLs.
    path("admin/login/", login_throttled(admin.site.login), name="admin-login-throttled"),
    path("admin/", admin.site.urls),
    path("app/", include("labelhub.app.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema/swagger-ui/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/schema/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="labelhub/redoc.html"),
        name="redoc",
    ),
    path("healthz/live/", health.live, name="health-live"),
    path("healthz/ready/", health.ready, name="health-ready"),
]

handler400 = "labelhub.core.errors.json_bad_request"
handler404 = "labelhub.core.errors.json_not_found"
handler500 = "labelhub.core.errors.json_server_error"
