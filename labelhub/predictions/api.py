"""Predictions (read only): what a model made of an image, naming the model and checkpoint."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import ALL_ROLES
from labelhub.core.api import IdFilterSet, PassThroughField
from labelhub.core.errors import DomainError
from labelhub.core.idempotency import idempotent
from labelhub.images.models import Image
from labelhub.projects.selectors import project_ids_visible

from . import selectors, services
from .models import Prediction


class PredictionOut(serializers.ModelSerializer):
    class Meta:
        model = Prediction
        fields = [
            "id",
            "image",
            "model_name",
            "checkpoint_sha256",
            "kind",
            "status",
            "score",
            "regions",
            "error",
            "attempts",
            "duration_ms",
            "service",
            "model_version",
            "created_at",
            "updated_at",
        ]


class PredictionFilter(IdFilterSet):
    project = filters.NumberFilter(field_name="image__project")

    class Meta:
        model = Prediction
        fields = ["image", "status", "model_name", "project"]


class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Prediction.objects.none()
    serializer_class = PredictionOut
    filterset_class = PredictionFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return Prediction.objects.filter(image__project_id__in=project_ids_visible(self.request.user))


class WindowIn(serializers.Serializer):
    x = serializers.IntegerField(min_value=0)
    y = serializers.IntegerField(min_value=0)
    width = serializers.IntegerField(min_value=1)
    height = serializers.IntegerField(min_value=1)


class PromptIn(serializers.Serializer):
    points = PassThroughField(required=False, help_text="[[x, y], ...] in pixels of the original image.")
    point_labels = PassThroughField(required=False, help_text="[1 | 0, ...]: 1 object, 0 background.")
    box = PassThroughField(required=False, help_text="[x0, y0, x1, y1] in pixels.")
    mask_input_id = serializers.CharField(required=False, help_text="From the previous answer: refines it.")
    mask_rle = serializers.DictField(
        required=False,
        help_text="COCO RLE of the image's size: a region's current shape, which the clicks refine (the "
        "app sends it for the first click on an existing region; later clicks send mask_input_id).",
    )
    multimask = serializers.BooleanField(required=False, allow_null=True)
    candidate = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2,
        help_text="Which of SAM's candidate masks: 0 the best by predicted IoU (default), 1 and 2 the "
        "others; a single click without box or mask_input has 3, any other prompt 1.",
    )
    service = serializers.IntegerField(
        required=False,
        help_text="A model service of the project (used for interactive clicks) answers instead.",
    )
    label = serializers.CharField(required=False, help_text="The class the clicks are for (model services).")
    window = WindowIn(
        required=False,
        help_text="Gigapixel (tiled) images only, and required there: the view {x, y, width, height} in "
        "full-resolution pixels. The window is read at the view's zoom (long side at most "
        "LABELHUB_PYRAMID_WINDOW_MAX_SIDE) and embedded (cached per window and model); polygons come "
        "back in full-resolution coordinates, the RLE is of the window at `window.scale`.",
    )


class SegmentOut(serializers.Serializer):
    rle = serializers.DictField()
    polygons = serializers.ListField(child=serializers.DictField())
    score = serializers.FloatField()
    area = serializers.IntegerField()
    model_name = serializers.CharField()
    checkpoint_sha256 = serializers.CharField()
    mask_input_id = serializers.CharField()
    candidates = serializers.IntegerField(help_text="How many candidate masks this prompt has.")
    candidate = serializers.IntegerField(help_text="Which one this is (0: the best).")
    embedding = serializers.CharField(
        help_text="Where the embedding came from: process, redis, storage, computed."
    )
    timing_ms = serializers.DictField(child=serializers.FloatField())
    window = serializers.DictField(
        required=False, help_text="Gigapixel images: the window segmented, with its scale."
    )


class BoxPromptIn(serializers.Serializer):
    label = serializers.CharField()
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4)


class PresegmentIn(serializers.Serializer):
    boxes = BoxPromptIn(many=True, required=False, help_text="Box prompts; without them, everything mode.")


class QueuedOut(serializers.Serializer):
    queued = serializers.IntegerField()


def _image_for(request, image_pk: int, roles, action: str) -> Image:
    return selectors.image_get(user=request.user, image_id=image_pk, roles=roles, action=action)


def _unknown_fields_refuse(data, allowed: set[str], *, what: str = "fields") -> None:
    """400 naming the first field of a request body that the endpoint does not know."""
    unknown = sorted(set(data) - allowed) if isinstance(data, dict) else []
    if unknown:
        raise DomainError(f"Unknown {what}: {unknown}.", field=unknown[0])


class ImageSegmentView(APIView):
    throttle_scope = "segment"

    @extend_schema(request=PromptIn, responses=SegmentOut)
    def post(self, request, image_pk: int):
        """Interactive segmentation: positive/negative clicks and/or a box (and `mask_input_id` from the
        previous answer, or `mask_rle`: a region's shape to refine) in; a mask as COCO RLE and simplified polygons out, from the cached embedding."""
        from .interactive import interactive_answer

        image = _image_for(request, image_pk, ALL_ROLES, "segment")
        _unknown_fields_refuse(request.data, set(PromptIn().fields), what="prompt fields")
        data = PromptIn(data=request.data)
        data.is_valid(raise_exception=True)
        prompt = {k: v for k, v in data.validated_data.items() if v is not None}
        if "service" in prompt:
            return Response(_service_answer(image=image, prompt=prompt))
        prompt.pop("label", None)
        return Response(interactive_answer(image=image, prompt=prompt))


def _service_answer(*, image: Image, prompt: dict) -> dict:
    """A prompt answered by the project's model service (Label Studio ML backend)."""
    from .interactive import prompt_check
    from .model_services import service_get, service_segment

    service = service_get(project=image.project, service_id=prompt["service"])
    prompt_check(image=image, prompt=prompt)
    if prompt.get("label") is not None and prompt["label"] not in image.project.class_names:
        raise DomainError(f"Unknown class {prompt['label']!r}.", field="label", code="unknown_class")
    return service_segment(service=service, image=image, prompt=prompt)


class PolygonizeIn(serializers.Serializer):
    rle = PassThroughField(help_text="{size: [height, width], counts}: COCO RLE of a mask of this image.")


class PolygonizeOut(serializers.Serializer):
    polygons = serializers.ListField(child=serializers.DictField())
    area = serializers.IntegerField()
    vertices = serializers.IntegerField()
    simplifier = serializers.CharField()
    min_iou = serializers.FloatField(allow_null=True)
    max_distance = serializers.FloatField(allow_null=True)
    timing_ms = serializers.DictField(child=serializers.FloatField())


class ImagePolygonizeView(APIView):
    throttle_scope = "segment"

    @extend_schema(request=PolygonizeIn, responses=PolygonizeOut)
    def post(self, request, image_pk: int):
        """A mask of this image (COCO RLE) in, its polygons out, under the project's simplifier and
        accuracy bound: exactly what `segment/` returns for the same mask. For masks decoded elsewhere,
        such as the labeling app's browser SAM decoder, when the class is drawn as polygons."""
        from .interactive import polygonize

        image = _image_for(request, image_pk, ALL_ROLES, "segment")
        _unknown_fields_refuse(request.data, {"rle"})
        if not isinstance(request.data, dict) or "rle" not in request.data:
            raise DomainError("rle is required: {size: [height, width], counts}.", field="rle")
        return Response(polygonize(image=image, rle=request.data["rle"]))


class ImagePresegmentView(APIView):
    @extend_schema(request=PresegmentIn, responses={202: QueuedOut})
    @idempotent
    def post(self, request, image_pk: int):
        """Queue pre-segmentation of one image: everything mode, or masks from box prompts."""
        image = _image_for(request, image_pk, MANAGING_ROLES, "queue pre-segmentation")
        data = PresegmentIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.image_presegment_queue(image=image, boxes=data.validated_data.get("boxes"))
        return Response({"queued": 1}, status=status.HTTP_202_ACCEPTED)


class ProjectEmbeddingsView(APIView):
    @extend_schema(request=None, responses={202: QueuedOut})
    @idempotent
    def post(self, request, project_pk: int):
        """Precompute the embeddings of every image of the project (batched on the `gpu` queue)."""
        from labelhub.projects.selectors import project_get

        project = project_get(
            user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action="precompute embeddings"
        )
        return Response(
            {"queued": services.project_embeddings_queue(project=project)}, status=status.HTTP_202_ACCEPTED
        )


class PrelabelStatusOut(serializers.Serializer):
    mode = serializers.CharField(help_text="The project's pre-label mode.")
    on_upload = serializers.BooleanField(help_text="New images are pre-labelled as they arrive.")
    reason = serializers.CharField(help_text="Why (or why not), for the manager.")
    images = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Images with a finished automatic prediction.")
    pending = serializers.IntegerField(help_text="Images whose pre-segmentation is queued or running.")
    failed = serializers.IntegerField(help_text="Images with a failed pre-segmentation.")
    without = serializers.IntegerField(help_text="Images with no automatic prediction at all.")


class ProjectPresegmentView(APIView):
    def project(self, request, project_pk: int, action: str):
        from labelhub.projects.selectors import project_get

        return project_get(user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action=action)

    @extend_schema(responses=PrelabelStatusOut)
    def get(self, request, project_pk: int):
        """Pre-segmentation progress of the project, and whether new images are pre-labelled on arrival."""
        project = self.project(request, project_pk, "see pre-segmentation")
        return Response(services.project_prelabel_status(project=project))

    @extend_schema(request=None, responses={202: QueuedOut})
    @idempotent
    def post(self, request, project_pk: int):
        """Pre-segment (everything mode) every image of the project that has no pre-labels yet."""
        project = self.project(request, project_pk, "queue pre-segmentation")
        queued = services.project_presegment_queue(project=project)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


EMBEDDING_HEADERS = (
    "X-Embedding-Shape",
    "X-Embedding-Dtype",
    "X-Original-Size",
    "X-Input-Size",
    "X-Model-Name",
    "X-Checkpoint-Sha256",
)


class ImageEmbeddingView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("model", str, description="Expected model name, e.g. sam-vit_h.")],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            202: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request, image_pk: int):
        """The image's SAM embedding for decoding clicks in the browser: raw little-endian float16,
        shape in `X-Embedding-Shape` (`1,256,64,64`), with `X-Original-Size` and `X-Input-Size`
        (`H,W`, for mapping clicks into SAM's 1024 frame) and the model that made it. 202 while a
        worker computes it: ask again after `Retry-After` seconds."""
        from .interactive import browser_embedding

        image = _image_for(request, image_pk, ALL_ROLES, "segment")
        embedding = browser_embedding(image=image, model=request.query_params.get("model") or None)
        if embedding is None:
            return Response(
                {"status": "computing"}, status=status.HTTP_202_ACCEPTED, headers={"Retry-After": "1"}
            )
        data = embedding.data.astype("<f2", copy=False)
        response = HttpResponse(data.tobytes(), content_type="application/octet-stream")
        values = (
            ",".join(str(n) for n in (1, *data.shape)),
            "float16",
            "{},{}".format(*embedding.original_size),
            "{},{}".format(*embedding.input_size),
            embedding.model_name,
            embedding.checkpoint_sha256,
        )
        for name, value in zip(EMBEDDING_HEADERS, values, strict=True):
            response[name] = value
        response["Access-Control-Expose-Headers"] = ", ".join(EMBEDDING_HEADERS)
        response["Cache-Control"] = "private, max-age=3600"
        return response


class SamDecoderView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request):
        """SAM's prompt encoder and mask decoder as ONNX, for onnxruntime-web. Inputs `image_embeddings`
        (1,256,64,64) float32, `point_coords` (1,N,2) in the 1024 frame, `point_labels` (1,N) (1, 0,
        2/3 box corners, -1 padding), `mask_input` (1,1,256,256), `has_mask_input` (1); outputs
        `low_res_masks` (1,4,256,256) logits and `iou_predictions` (1,4)."""
        from .interactive import browser_decoder

        path, model_name, checkpoint = browser_decoder()
        response = FileResponse(open(path, "rb"), content_type="application/octet-stream")
        response["X-Model-Name"] = model_name
        response["X-Checkpoint-Sha256"] = checkpoint
        response["Access-Control-Expose-Headers"] = "X-Model-Name, X-Checkpoint-Sha256"
        response["Cache-Control"] = "private, max-age=86400"
        return response
