"""Tasks, annotations (current or any revision; writes name the revision they read) and comments."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import ISO_8601, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of
from labelhub.core.api import IdFilterSet, PassThroughField
from labelhub.core.errors import DomainError, NotFound
from labelhub.core.idempotency import idempotent
from labelhub.projects.models import Project
from labelhub.projects.selectors import project_get, project_ids_visible

from . import annotations, assignments, leases, reviews, selectors, services, tasklist
from .models import AnnotationRevision, Comment, Task, TaskEvent


class TaskOut(serializers.ModelSerializer):
    revision = serializers.IntegerField(source="annotation.current_revision", read_only=True)
    stranded = serializers.SerializerMethodField(
        help_text="Open in a review stage that no member of the stage's role may take (they all worked on "
        "it or checked it earlier): offered to managers and owners (next-task gives it to them first)."
    )

    def get_stranded(self, task: Task) -> bool:
        return leases.task_is_stranded(task)

    # null on a video task (it has frames of a video, no image): DRF would otherwise leave the keys out
    image_width = serializers.IntegerField(source="image.width", read_only=True, allow_null=True)
    image_height = serializers.IntegerField(source="image.height", read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "image",
            "image_width",
            "image_height",
            "video",
            "frame_start",
            "frame_stop",
            "stage",
            "status",
            "assignee",
            "lease_expires_at",
            "claimed_at",
            "last_heartbeat_at",
            "active_seconds",
            "last_annotator",
            "revision",
            "stranded",
            "created_at",
            "updated_at",
        ]


# A task list's rows are read as plain values and written as `TaskOut` writes them: DRF's serializer
# cost a page of 50 tasks three times its query (a model and a field object per value).
TASK_ROW_COLUMNS = (
    "id", "project_id", "image_id", "image__width", "image__height", "video_id", "frame_start", "frame_stop",
    "stage", "status", "assignee_id",
    "lease_expires_at", "claimed_at", "last_heartbeat_at", "active_seconds", "last_annotator_id",
    "annotation__current_revision", "created_at", "updated_at",
)  # fmt: skip
_DATETIME = serializers.DateTimeField()


def _iso_writer():
    """A function writing a datetime as `DateTimeField` writes it (ISO 8601 in the current time zone, `Z`
    for UTC), for a whole page at once: DRF's field cost a task list page more than its query (its time
    zone looked up again for each of the page's 250 values)."""
    if api_settings.DATETIME_FORMAT != ISO_8601:
        return _DATETIME.to_representation
    zone = _DATETIME.default_timezone()

    def iso(value):
        if value is None:
            return None
        if zone is not None and timezone.is_aware(value):
            text = value.astimezone(zone).isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return _DATETIME.to_representation(value)

    return iso


def task_rows(values: list[dict]) -> list[dict]:
    """`TaskOut`'s representation (same keys, order and value formats) of rows read with
    `.values(*TASK_ROW_COLUMNS)`, with `stranded` computed once for all of them."""
    stranded = leases.tasks_stranded_ids(
        [(v["id"], v["project_id"], v["stage"], v["status"]) for v in values]
    )
    when = _iso_writer()
    return [
        {
            "id": v["id"],
            "project": v["project_id"],
            "image": v["image_id"],
            "image_width": v["image__width"],
            "image_height": v["image__height"],
            "video": v["video_id"],
            "frame_start": v["frame_start"],
            "frame_stop": v["frame_stop"],
            "stage": v["stage"],
            "status": v["status"],
            "assignee": v["assignee_id"],
            "lease_expires_at": when(v["lease_expires_at"]),
            "claimed_at": when(v["claimed_at"]),
            "last_heartbeat_at": when(v["last_heartbeat_at"]),
            "active_seconds": v["active_seconds"],
            "last_annotator": v["last_annotator_id"],
            "revision": v["annotation__current_revision"],
            "stranded": v["id"] in stranded,
            "created_at": when(v["created_at"]),
            "updated_at": when(v["updated_at"]),
        }
        for v in values
    ]


class _TaskRows:
    """A filtered task queryset as the paginator reads it: a page is sliced from its rows read with
    `.values(*TASK_ROW_COLUMNS)`, the total counted on the queryset itself. The LEFT JOINs that `.values()`
    adds for the image's size and the revision stayed in its COUNT: 3.9 ms for 5,000 tasks on SQLite
    instead of 0.2 ms."""

    def __init__(self, queryset):
        self.queryset = queryset

    def count(self) -> int:
        return self.queryset.count()

    def __getitem__(self, index):
        return self.queryset.values(*TASK_ROW_COLUMNS)[index]


class RegionSerializer(serializers.Serializer):
    id = serializers.CharField(required=False)
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["polygon", "mask"])
    polygons = serializers.JSONField(
        required=False, help_text="[{exterior: [[x, y], ...], holes: [[[x, y], ...]]}]"
    )
    rle = serializers.JSONField(required=False, help_text="COCO RLE {size: [height, width], counts}")
    source = serializers.ChoiceField(choices=["ai", "human"], required=False)
    prediction_id = serializers.IntegerField(required=False, allow_null=True)
    score = serializers.FloatField(required=False, allow_null=True)
    frame = serializers.IntegerField(required=False, help_text="Video tasks: the frame number.")
    track = serializers.CharField(required=False, help_text="Video tasks: the object's id.")
    keyframe = serializers.BooleanField(
        required=False, help_text="Video tasks: drawn or corrected by a person."
    )
    outside = serializers.BooleanField(required=False)
    occluded = serializers.BooleanField(required=False)
    model = serializers.JSONField(
        required=False, help_text="Video tasks: {name, version} of what propagated it."
    )


class RevisionOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True, allow_null=True)
    regions = RegionSerializer(many=True)

    class Meta:
        model = AnnotationRevision
        fields = ["number", "regions", "author", "stage", "summary", "created_at"]


class RevisionBrief(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = AnnotationRevision
        fields = ["number", "author", "stage", "summary", "created_at"]


class AnnotationOut(serializers.Serializer):
    task = serializers.IntegerField()
    revision = serializers.IntegerField(help_text="The revision shown; send it back when you save.")
    current_revision = serializers.IntegerField()
    regions = RegionSerializer(many=True)
    author = serializers.CharField(allow_null=True)
    stage = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)


class AnnotationIn(serializers.Serializer):
    revision = serializers.IntegerField(
        min_value=0, help_text="The revision you read (0 when there was none)."
    )
    regions = PassThroughField(help_text="The full list of regions after your change (see Region).")


class CommentOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = Comment
        fields = [
            "id",
            "task",
            "author",
            "text",
            "region_id",
            "x",
            "y",
            "frame",
            "revision",
            "resolved",
            "created_at",
        ]


class CommentIn(serializers.Serializer):
    text = serializers.CharField(max_length=5000)
    region_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    x = serializers.FloatField(required=False, allow_null=True)
    y = serializers.FloatField(required=False, allow_null=True)
    frame = serializers.IntegerField(required=False, allow_null=True, help_text="Video tasks: the frame.")


class CommentPatch(serializers.Serializer):
    resolved = serializers.BooleanField()


class EventOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True, allow_null=True)
    data = serializers.JSONField()

    class Meta:
        model = TaskEvent
        fields = ["id", "kind", "from_stage", "to_stage", "actor", "revision", "data", "created_at"]


class TimelineOut(serializers.Serializer):
    task = TaskOut()
    revisions = RevisionBrief(many=True)
    events = EventOut(many=True)
    comments = CommentOut(many=True)


class RejectIn(serializers.Serializer):
    comments = PassThroughField(
        help_text="At least one {text, region_id?, x?, y?}: pinned to a region id or a point (pixels)."
    )


class ReassignIn(serializers.Serializer):
    assignee = serializers.IntegerField(
        allow_null=True, help_text="User id to reserve the task for; null returns it to the open queue."
    )


class GoldIn(serializers.Serializer):
    is_gold = serializers.BooleanField()
    regions = PassThroughField(required=False, help_text="The known-correct regions (see Region).")


class GoldOut(serializers.Serializer):
    task = serializers.IntegerField()
    is_gold = serializers.BooleanField()
    regions = RegionSerializer(many=True)


class NextTaskIn(serializers.Serializer):
    stage = serializers.CharField(
        required=False,
        help_text="Pipeline stage; default: the first stage worked by your role (the first stage for managers).",
    )


def annotation_payload(task: Task, revision: AnnotationRevision | None) -> dict:
    return {
        "task": task.id,
        "revision": revision.number if revision else 0,
        "current_revision": task.annotation.current_revision,
        "regions": revision.regions if revision else [],
        "author": revision.author.username if revision and revision.author else None,
        "stage": revision.stage if revision else None,
        "created_at": revision.created_at if revision else None,
    }


class TaskFilter(IdFilterSet):
    stranded = django_filters.BooleanFilter(
        method="filter_stranded",
        label="Only (true) or no (false) tasks that no member of their review stage's role may take.",
    )

    def filter_stranded(self, queryset, name, value):
        projects = Project.objects.filter(pk__in=queryset.order_by().values("project_id").distinct())
        q = Q(pk__in=[])
        for project in projects:
            q |= leases.stranded_q(project)
        return queryset.filter(q) if value else queryset.exclude(q)

    class Meta:
        model = Task
        fields = ["project", "stage", "status", "assignee", "image"]


class TaskViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Task.objects.none()
    serializer_class = TaskOut
    filterset_class = TaskFilter
    lookup_value_regex = r"\d+"
    ordering_fields = ["id", "created_at", "updated_at"]

    def get_queryset(self):
        # A list of one project's tasks (`?project=`, as the app asks for them) reads that project's
        # visibility once; any other value is left to the filter, which answers 400 for a bad one.
        project = self.request.query_params.get("project", "") if self.action == "list" else ""
        if project.isascii() and project.isdigit() and 0 < int(project) < 2**63:
            return selectors.tasks_visible(user=self.request.user, project_id=int(project))
        return selectors.tasks_visible(user=self.request.user)

    def list(self, request, *args, **kwargs):
        """Tasks you may see, filtered and ordered, a page at a time (`TaskOut` rows)."""
        page = self.paginate_queryset(_TaskRows(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(task_rows(page))

    def task(self) -> Task:
        try:
            task_id = int(self.kwargs["pk"])
        except (TypeError, ValueError):
            raise NotFound("No such task.") from None
        return selectors.task_get(user=self.request.user, task_id=task_id)

    @extend_schema(
        methods=["GET"],
        parameters=[
            OpenApiParameter("revision", OpenApiTypes.INT, description="A past revision; default current.")
        ],
        responses=AnnotationOut,
    )
    @extend_schema(
        methods=["PUT"], request=AnnotationIn, responses={200: AnnotationOut, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["get", "put"])
    @idempotent
    def annotation(self, request, pk=None):
        """Read the annotation (current or `?revision=N`); PUT the full region list with the revision you read.
        A stale revision answers 409 and the newer revision is kept. Writing needs the task's live lease
        (from next-task) unless you are a manager or owner; an expired lease answers 409."""
        task = self.task()
        if request.method == "GET":
            number = request.query_params.get("revision")
            if number is not None:
                try:
                    number = int(number)
                except ValueError:
                    raise DomainError("revision is an integer.", field="revision") from None
            revision = selectors.annotation_revision_get(task=task, number=number)
            return Response(annotation_payload(task, revision))
        data = AnnotationIn(data=request.data)
        data.is_valid(raise_exception=True)
        revision = annotations.annotation_write(
            task=task,
            author=request.user,
            base_revision=data.validated_data["revision"],
            regions=data.validated_data["regions"],
        )
        return Response(annotation_payload(task, revision))

    def _page(self, queryset, serializer_class) -> Response:
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(responses=RevisionBrief(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def revisions(self, request, pk=None):
        """Every revision of the task's annotation, oldest first (paginated): who, when, stage, what changed."""
        task = self.task()
        return self._page(
            task.annotation.revisions.select_related("author").order_by("number"), RevisionBrief
        )

    @extend_schema(methods=["GET"], responses=CommentOut(many=True))
    @extend_schema(methods=["POST"], request=CommentIn, responses={201: CommentOut})
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    @idempotent
    def comments(self, request, pk=None):
        """Comments on the task (paginated, oldest first), optionally pinned to a region (`region_id`) or a
        point (`x`, `y`)."""
        task = self.task()
        if request.method == "GET":
            return self._page(task.comments.select_related("author").order_by("created_at", "id"), CommentOut)
        data = CommentIn(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.comment_create(task=task, author=request.user, **data.validated_data)
        return Response(CommentOut(comment).data, status=status.HTTP_201_CREATED)

    def _task_out(self, task: Task) -> Response:
        """The task after the caller's action on it (a honeypot they just handed back included)."""
        return Response(
            TaskOut(selectors.task_get(user=self.request.user, task_id=task.pk, honeypots=True)).data
        )

    @extend_schema(
        request=None,
        responses={200: TaskOut, 409: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("tab", str, description="The app's browser tab id (leases of several tabs).")
        ],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def heartbeat(self, request, pk=None):
        """Extend your lease (LABELHUB_LEASE_SECONDS from now); the time since the last heartbeat counts as
        active if it is at most LABELHUB_ACTIVE_GAP_SECONDS. 409 if you do not hold a live lease."""
        tab = str(request.query_params.get("tab", ""))[:40]
        return self._task_out(leases.task_heartbeat(task=self.task(), user=request.user, tab=tab))

    @extend_schema(
        request=None,
        responses={200: TaskOut, 409: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter("tab", str, description="The app's browser tab id (leases of several tabs).")
        ],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def release(self, request, pk=None):
        """Give the task you hold back to its stage's queue. With `?tab=` (the app's tab id, also sent on
        heartbeats): only when no other tab of yours has beaten on this task in the last 75 s; otherwise
        the lease stays and the task is returned unchanged."""
        tab = str(request.query_params.get("tab", ""))[:40]
        return self._task_out(leases.task_release(task=self.task(), user=request.user, tab=tab))

    @extend_schema(request=None, responses={200: TaskOut, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    @idempotent
    def submit(self, request, pk=None):
        """First stage: hand your annotation on to the next stage (needs your live lease)."""
        return self._task_out(reviews.task_submit(task=self.task(), user=request.user))

    @extend_schema(request=None, responses={200: TaskOut, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    @idempotent
    def accept(self, request, pk=None):
        """Review stages: pass the task on (to done after the last stage). 409 if it is not in review or you
        hold no live lease; 403 for your own work."""
        return self._task_out(reviews.task_accept(task=self.task(), user=request.user))

    @extend_schema(
        request=RejectIn, responses={200: TaskOut, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request, pk=None):
        """Review stages: send the task back to the stage its pipeline names (reserved for whoever worked it
        there) with comments pinned to regions or points."""
        data = RejectIn(data=request.data)
        data.is_valid(raise_exception=True)
        task = reviews.task_reject(
            task=self.task(), user=request.user, comments=data.validated_data["comments"]
        )
        return self._task_out(task)

    @extend_schema(
        request=AnnotationIn, responses={200: TaskOut, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"], url_path="fix-accept")
    @idempotent
    def fix_accept(self, request, pk=None):
        """Review stages: save your corrected regions (a revision credited to you) and accept."""
        data = AnnotationIn(data=request.data)
        data.is_valid(raise_exception=True)
        task = reviews.task_fix_accept(
            task=self.task(),
            user=request.user,
            base_revision=data.validated_data["revision"],
            regions=data.validated_data["regions"],
        )
        return self._task_out(task)

    @extend_schema(request=None, responses={200: TaskOut, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    @idempotent
    def claim(self, request, pk=None):
        """Take this very task with a lease (a deep link, the manager's task list), or learn why not: 409
        `leased` (who holds it and until when), `reserved` (kept for someone else), `done`; 403
        `role_forbidden`, `own_work`, `review_not_independent`. Your live lease on another task of the
        same stage is released."""
        return Response(TaskOut(leases.task_claim(task=self.task(), user=request.user)).data)

    @extend_schema(
        request=ReassignIn, responses={200: TaskOut, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reassign(self, request, pk=None):
        """Managers: reserve the task for a member (they get it from next-task) or return it to the queue."""
        task = self.task()
        data = ReassignIn(data=request.data)
        data.is_valid(raise_exception=True)
        task = assignments.task_reassign(
            task=task, manager=request.user, assignee_id=data.validated_data["assignee"]
        )
        return self._task_out(task)

    @extend_schema(methods=["GET"], responses=GoldOut)
    @extend_schema(methods=["PUT"], request=GoldIn, responses=GoldOut)
    @action(detail=True, methods=["get", "put"])
    @idempotent
    def gold(self, request, pk=None):
        """Managers: whether the task is a gold (honeypot) task and its known-correct regions; PUT to mark
        or unmark it. First-stage submissions of gold tasks are scored by IoU against these regions."""
        task = self.task()
        if request.method == "PUT":
            data = GoldIn(data=request.data)
            data.is_valid(raise_exception=True)
            task = assignments.task_gold_set(
                task=task,
                manager=request.user,
                is_gold=data.validated_data["is_gold"],
                regions=data.validated_data.get("regions"),
            )
        return Response(selectors.task_gold_get(user=request.user, task=task))

    @extend_schema(responses=TimelineOut)
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        """The task's whole history in one call: revisions (who, when, stage, what changed), workflow events
        (claims, submits, accepts, rejections, reassignments, expired leases, sampling skips) and comments."""
        task = self.task()
        return Response(
            {
                "task": TaskOut(task).data,
                "revisions": RevisionBrief(
                    task.annotation.revisions.select_related("author").order_by("number"), many=True
                ).data,
                "events": EventOut(
                    selectors.task_events_visible(user=request.user, task=task), many=True
                ).data,
                "comments": CommentOut(task.comments.select_related("author"), many=True).data,
            }
        )


class TaskRowOut(serializers.ModelSerializer):
    image_name = serializers.CharField(source="image.original_name", read_only=True)
    thumbnail_url = serializers.SerializerMethodField()
    assignee_name = serializers.CharField(source="assignee.username", default=None, read_only=True)
    revision = serializers.IntegerField(source="annotation.current_revision", read_only=True)
    open_comments = serializers.IntegerField(read_only=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "image",
            "image_name",
            "thumbnail_url",
            "stage",
            "status",
            "assignee",
            "assignee_name",
            "lease_expires_at",
            "is_gold",
            "open_comments",
            "revision",
            "updated_at",
        ]

    def get_thumbnail_url(self, obj: Task) -> str:
        return f"/api/v1/images/{obj.image_id}/thumbnail/"


class TaskPageOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="Matching tasks, counted up to 10,000.")
    count_exact = serializers.BooleanField(help_text="False when there are more than `count`.")
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    has_next = serializers.BooleanField()
    results = TaskRowOut(many=True)


class ProjectTaskListView(APIView):
    """GET /projects/{id}/tasks/: the manager's task list."""

    @extend_schema(
        parameters=[
            OpenApiParameter("stage", OpenApiTypes.STR, description="A stage of the pipeline, or done."),
            OpenApiParameter("status", OpenApiTypes.STR, description="open, in_progress or done."),
            OpenApiParameter("assignee", OpenApiTypes.STR, description="A user id, or `none`."),
            OpenApiParameter("gold", OpenApiTypes.BOOL),
            OpenApiParameter("open_comments", OpenApiTypes.BOOL, description="Has unresolved comments."),
            OpenApiParameter(
                "source",
                OpenApiTypes.STR,
                enum=["ai", "human"],
                description="The current revision still holds an AI region (ai) or none (human).",
            ),
            OpenApiParameter("sort", OpenApiTypes.STR, enum=sorted(tasklist.SORTS)),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1-200, default 50."),
        ],
        responses=TaskPageOut,
    )
    def get(self, request, project_pk: int):
        """Managers: the project's tasks, filtered and sorted, one page at a time, with each task's
        assignee, gold flag, open comments and a thumbnail. An id that is not this organization's (an
        assignee) answers an empty list; the total is exact up to 10,000 (`count_exact`)."""
        page = tasklist.task_list_page(user=request.user, project_id=project_pk, params=request.query_params)
        return Response(TaskPageOut(page).data)


def _int_param(request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise DomainError(f"{name} is a task id.", field=name) from None


class ProjectNextTaskView(APIView):
    """POST /projects/{id}/next-task/: your next task in a stage, with a lease."""

    @extend_schema(
        request=NextTaskIn,
        parameters=[
            OpenApiParameter("stage", OpenApiTypes.STR, description="Stage (or in the body)."),
            OpenApiParameter("exclude", OpenApiTypes.INT, description="Any task but this one (next task)."),
        ],
        responses={200: TaskOut, 204: None, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
    )
    @idempotent
    def post(self, request, project_pk: int):
        """Claim your next task in `stage` (query or body): a task reserved for you first (a rejection sent
        back to you, a manager's reassignment), then one whose lease expired (longest expired first), then
        the oldest open one. Never
        the same task to two people; in review stages never your own work. A live lease you already hold
        in the stage is handed back. 204 when the queue is empty, with the reason for you in the headers
        `X-Queue-Reason-Code` (empty, all_taken, independence, reserved, not_claimable) and
        `X-Queue-Reason` (a sentence). `?exclude=` skips one task (the app's next task: never the one just
        left)."""
        project = project_get(user=request.user, project_id=project_pk)
        data = NextTaskIn(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        stage = request.query_params.get("stage") or data.validated_data.get("stage")
        if not stage:
            role = role_of(user=request.user, organization_id=project.organization_id)
            stage = next(
                (s["name"] for s in project.pipeline if s["role"] == role or role in MANAGING_ROLES),
                project.first_stage,
            )
        exclude = _int_param(request, "exclude")
        task = leases.task_claim_next(project=project, user=request.user, stage=stage, exclude=exclude)
        if task is None:
            response = Response(status=status.HTTP_204_NO_CONTENT)
            code, reason = leases.queue_empty_reason(project=project, user=request.user, stage=stage)
            response["X-Queue-Reason-Code"] = code
            response["X-Queue-Reason"] = reason.encode("ascii", "replace").decode()
            return response
        # The claim read the task with what TaskOut shows (project, image, annotation, assignee); the
        # project was checked visible above, so no second read.
        return Response(TaskOut(task).data)


class CommentViewSet(mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    queryset = Comment.objects.none()
    serializer_class = CommentOut
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "patch"]

    def get_queryset(self):
        comments = Comment.objects.filter(task__project_id__in=project_ids_visible(self.request.user))
        hidden = selectors.honeypots_hidden(user=self.request.user)
        return comments if hidden is None else comments.exclude(task__in=Task.objects.filter(hidden))

    @extend_schema(request=CommentPatch, responses=CommentOut)
    def partial_update(self, request, *args, **kwargs):
        """Resolve (or reopen) a comment."""
        comment = self.get_object()
        data = CommentPatch(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.comment_resolve(
            comment=comment, user=request.user, resolved=data.validated_data["resolved"]
        )
        return Response(CommentOut(comment).data)
