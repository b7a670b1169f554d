"""Exports (create, read, progress, ranged download, formats) and import jobs (COCO, YOLO, images)."""

from __future__ import annotations

import json

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, parsers, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.core.api import IdFilterSet, PassThroughField
from labelhub.core.downloads import stored_file_response
from labelhub.core.errors import Conflict, DomainError
from labelhub.core.idempotency import idempotent
from labelhub.core.limits import FORM_OVERHEAD_BYTES, request_size_limit
from labelhub.projects.models import Project
from labelhub.projects.selectors import project_get

from . import exports, import_jobs, imports, selectors
from .formats import FORMATS
from .models import Export, ExportStatus, Import


class ExportProgressOut(serializers.Serializer):
    done = serializers.IntegerField(help_text="Images written so far.")
    total = serializers.IntegerField(help_text="Images in the snapshot.")


class ExportOut(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    filters = PassThroughField()
    split = PassThroughField()

    class Meta:
        model = Export
        fields = [
            "id",
            "project",
            "format",
            "status",
            "progress",
            "filters",
            "split",
            "include_images",
            "annotations_count",
            "quality",
            "size_bytes",
            "sha256",
            "error",
            "download_url",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema(responses=ExportProgressOut)
    def get_progress(self, obj: Export) -> dict:
        return {"done": obj.progress_done, "total": obj.progress_total}

    def get_download_url(self, obj: Export) -> str | None:
        return obj.download_path


class ExportFiltersIn(serializers.Serializer):
    classes = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    stages = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    accepted = serializers.BooleanField(required=False, help_text="Accepted tasks (default true).")
    annotated = serializers.BooleanField(
        required=False, help_text="Also tasks not accepted yet of which a human saved a revision."
    )
    include_empty = serializers.BooleanField(
        required=False, help_text="Also tasks not accepted yet with no human revision (unlabelled images)."
    )
    include_unaccepted = serializers.BooleanField(
        required=False, help_text="Older form: true = annotated and include_empty (every task)."
    )


class ExportSplitIn(serializers.Serializer):
    train = serializers.FloatField(required=False)
    val = serializers.FloatField(required=False)
    test = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False)


@extend_schema_field(ExportFiltersIn)
class FiltersField(PassThroughField):
    """Documented as ExportFiltersIn; validated by the service, which names the bad field."""


@extend_schema_field(ExportSplitIn)
class SplitField(PassThroughField):
    """Documented as ExportSplitIn; validated by the service, which names the bad field."""


class DatasetExportIn(serializers.Serializer):
    format = serializers.ChoiceField(choices=sorted(FORMATS))
    # Validated by the service, which names the bad field (filters.classes[1], split.seed, ...).
    filters = FiltersField(
        required=False, help_text="ExportFiltersIn: {classes, stages, accepted, annotated, include_empty}."
    )
    split = SplitField(
        required=False, help_text="ExportSplitIn: {train, val, test, seed}; default all train."
    )
    include_images = serializers.BooleanField(default=False)


class ExportFormatOut(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    importable = serializers.BooleanField()


class DatasetImportIn(serializers.Serializer):
    file = serializers.FileField(help_text="COCO .json, a zip (labels and/or images), or a YOLO .txt.")
    format = serializers.ChoiceField(choices=list(imports.IMPORT_FORMATS))
    model_name = serializers.CharField(required=False, allow_blank=True, help_text="For predictions.")
    repair = serializers.BooleanField(
        default=False,
        help_text="CVAT and Label Studio: repair self-intersecting polygons with shapely make_valid "
        "(each repaired region is reported) instead of refusing the file.",
    )


DatasetImportIn._declared_fields["as"] = serializers.ChoiceField(  # "as" is a Python keyword
    choices=list(imports.IMPORT_TARGETS), default="annotations", required=False
)


class DatasetImportResultOut(serializers.Serializer):
    format = serializers.CharField()
    target = serializers.CharField()
    images_created = serializers.IntegerField()
    images_matched = serializers.IntegerField()
    regions = serializers.IntegerField()
    revisions = serializers.ListField(child=serializers.IntegerField())
    predictions = serializers.ListField(child=serializers.IntegerField())
    box_prompts = serializers.IntegerField(help_text="COCO boxes without segmentation, queued for the model.")
    repaired = serializers.ListField(
        child=serializers.DictField(),
        help_text="With repair: {path, region, problem, parts} per repaired region.",
    )


class DiffItemsOut(serializers.Serializer):
    added = serializers.ListField(child=serializers.IntegerField(), help_text="Image ids.")
    removed = serializers.ListField(child=serializers.IntegerField(), help_text="Image ids.")
    changed = serializers.ListField(child=serializers.IntegerField(), help_text="Image ids.")
    unchanged = serializers.IntegerField()


class DiffRegionsOut(serializers.Serializer):
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    changed = serializers.IntegerField()


class DiffChangeOut(serializers.Serializer):
    image = serializers.IntegerField()
    from_revision = serializers.IntegerField()
    to_revision = serializers.IntegerField()
    added = serializers.ListField(child=serializers.CharField(), help_text="Region ids.")
    removed = serializers.ListField(child=serializers.CharField(), help_text="Region ids.")
    changed = serializers.ListField(child=serializers.CharField(), help_text="Region ids.")


class ExportDiffOut(serializers.Serializer):
    export = serializers.IntegerField()
    against = serializers.IntegerField()
    items = DiffItemsOut()
    regions = DiffRegionsOut()
    changes = DiffChangeOut(many=True)


class ImportErrorOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class ImportProblemOut(serializers.Serializer):
    path = serializers.CharField(
        help_text="Where in the file: `$.annotations[3].segmentation[0]`, `a.txt:2`."
    )
    message = serializers.CharField()


@extend_schema_field(DatasetImportResultOut(allow_null=True))
class ImportResultField(PassThroughField):
    """What the import wrote (when done)."""


@extend_schema_field(ImportErrorOut(allow_null=True))
class ImportErrorField(PassThroughField):
    """Why the import was refused or failed (when failed)."""


@extend_schema_field(ImportProblemOut(many=True))
class ImportProblemsField(PassThroughField):
    """Every problem of a refused file, with its place."""


class ImportOut(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    result = ImportResultField(read_only=True)
    error = ImportErrorField(read_only=True)
    problems = ImportProblemsField(read_only=True)

    class Meta:
        model = Import
        fields = [
            "id",
            "project",
            "format",
            "target",
            "model_name",
            "repair",
            "file_name",
            "size_bytes",
            "status",
            "progress",
            "result",
            "error",
            "problems",
            "more_problems",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema(responses=ExportProgressOut)
    def get_progress(self, obj: Import) -> dict:
        return {"done": obj.progress_done, "total": obj.progress_total}


def _project(request, project_pk, action: str) -> Project:
    return project_get(user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action=action)


class ProjectExportView(APIView):
    @extend_schema(request=DatasetExportIn, responses={202: ExportOut})
    @idempotent
    def post(self, request, project_pk):
        """Take a snapshot of the project's annotations (accepted tasks by default) and write it as a
        dataset archive on the `cpu` queue. Answers 202; poll the export for progress."""
        project = _project(request, project_pk, "export datasets")
        data = DatasetExportIn(data=request.data)
        data.is_valid(raise_exception=True)
        export = exports.export_create(project=project, user=request.user, **data.validated_data)
        export.refresh_from_db()
        return Response(ExportOut(export).data, status=status.HTTP_202_ACCEPTED)


class ProjectImportView(APIView):
    parser_classes = [parsers.MultiPartParser]
    throttle_scope = "import"

    def initial(self, request, *args, **kwargs):
        # before authentication: a session's CSRF check would parse the body
        limit = settings.LABELHUB_IMPORT_MAX_BYTES
        request_size_limit(request, max_body=limit + FORM_OVERHEAD_BYTES, max_file=limit, field="file")
        super().initial(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": DatasetImportIn}, responses={202: ImportOut})
    @idempotent
    def post(self, request, project_pk):
        """Queue an import of COCO or YOLO-seg labels (as annotations or predictions; images matched by
        original file name) or of a zip of images on the `cpu` queue. Answers 202 with the job; poll
        `imports/{id}/`. The file's cheap checks run first and answer 400 `invalid_import` with nothing
        stored: a zip's entry names, declared sizes and CRCs (`zip:bad.png`), JSON nesting deeper than
        LABELHUB_MAX_JSON_DEPTH. All or nothing: any other bad content ends the job `failed` with error
        `invalid_import` and every problem with its place (`$.annotations[3].segmentation[0]`,
        `labels/a.txt:2`)."""
        project = _project(request, project_pk, "import datasets")
        data = DatasetImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        with upload.open("rb") as fh:
            job = import_jobs.import_create(
                project=project,
                fh=fh,
                file_name=upload.name or "file",
                size=upload.size,
                format=data.validated_data["format"],
                target=data.validated_data.get("as", "annotations"),
                model_name=data.validated_data.get("model_name", ""),
                user=request.user,
                repair=data.validated_data.get("repair", False),
            )
        job.refresh_from_db()  # in embedded (eager) mode the job has already run
        return Response(ImportOut(job).data, status=status.HTTP_202_ACCEPTED)


class ImportFilter(IdFilterSet):
    class Meta:
        model = Import
        fields = ["project", "status", "format"]


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Import jobs: status, progress, what was written or every problem of a refused file."""

    queryset = Import.objects.none()
    serializer_class = ImportOut
    lookup_value_regex = r"\d+"
    filterset_class = ImportFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return selectors.imports_visible(user=self.request.user)


class ZipRenderer(renderers.BaseRenderer):
    """Lets `Accept: application/zip` reach the download; errors still go out as JSON."""

    media_type = "application/zip"
    format = "zip"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


class ExportFilter(IdFilterSet):
    class Meta:
        model = Export
        fields = ["project", "status", "format"]


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Export.objects.none()
    serializer_class = ExportOut
    lookup_value_regex = r"\d+"
    filterset_class = ExportFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return selectors.exports_visible(user=self.request.user)

    @extend_schema(responses=ExportFormatOut(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def formats(self, request):
        """The registered export formats (and which of them can be imported)."""
        return Response(
            ExportFormatOut(
                [
                    {
                        "name": name,
                        "title": cls.title,
                        "description": cls.description,
                        "importable": name in imports.IMPORT_FORMATS,
                    }
                    for name, cls in sorted(FORMATS.items())
                ],
                many=True,
            ).data
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against",
                OpenApiTypes.INT,
                OpenApiParameter.QUERY,
                required=True,
                description="The id of the older dataset version (an export of the same project).",
            )
        ],
        responses=ExportDiffOut,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def diff(self, request, pk=None):
        """What changed between two dataset versions of a project: items (images) and regions added,
        removed and changed from `against` to this export."""
        export = self.get_object()
        raw = request.query_params.get("against", "")
        if not raw.isdigit() or len(raw) > 18:
            raise DomainError("against is the id of another export.", field="against")
        against = selectors.export_get(user=request.user, export_id=int(raw))
        return Response(ExportDiffOut(selectors.export_diff(export=export, against=against)).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "Range", OpenApiTypes.STR, OpenApiParameter.HEADER, description="bytes=first-last"
            )
        ],
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            (206, "application/zip"): OpenApiTypes.BINARY,
            302: None,
            416: None,
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, ZipRenderer])
    def download(self, request, pk=None):
        """The archive. Supports `Range: bytes=first-last` (206 with Content-Range; 416 past the end) and
        `If-Range` with the ETag (the archive's sha256), so interrupted downloads resume. On S3 storage
        it answers 302 to a short-lived presigned URL (S3 serves the ranges) unless
        LABELHUB_S3_DOWNLOAD=proxy."""
        export = self.get_object()
        selectors.export_download_check(user=request.user, export=export)
        if export.status != ExportStatus.DONE or not export.file.name:
            raise Conflict(f"The export is not ready: it is {export.status}.", code="export_not_ready")
        return stored_file_response(
            file=export.file,
            filename=f"labelhub-project{export.project_id}-export{export.id}-{export.format}.zip",
            content_type="application/zip",
            etag=export.sha256,
            range_header=request.headers.get("Range"),
            if_range=request.headers.get("If-Range"),
        )
