"""Tasks (one image, or a range of a video's frames, in one project, moving through the QA pipeline), annotations with immutable
revisions, and comments."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.images.models import Image
from labelhub.projects.models import Project
from labelhub.videos.models import Video


class TaskStatus(models.TextChoices):
    OPEN = "open", "Waiting in its stage"
    IN_PROGRESS = "in_progress", "Claimed by its assignee"
    DONE = "done", "Accepted after the last stage"


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="task", null=True, blank=True)
    # A video task: frames [frame_start, frame_stop) of `video` (consecutive tasks of a video overlap by
    # LABELHUB_VIDEO_TASK_OVERLAP frames, so tracks join across them). Exactly one of image and video is set.
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="tasks", null=True, blank=True)
    frame_start = models.PositiveIntegerField(null=True, blank=True)
    frame_stop = models.PositiveIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The current claim: when it began, the last heartbeat, and the active seconds counted from heartbeats.
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0.0)
    # Who last submitted the task from the first stage: a rejection back there returns it to them, and
    # they never review it.
    last_annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Gold (honeypot) tasks carry known-correct regions; first-stage submissions are scored against them.
    is_gold = models.BooleanField(default=False)
    gold_regions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(image__isnull=False, video__isnull=True, frame_start__isnull=True)
                    | models.Q(
                        image__isnull=True,
                        video__isnull=False,
                        frame_start__isnull=False,
                        frame_stop__gt=models.F("frame_start"),
                    )
                ),
                name="task_image_or_video_range",
            )
        ]
        # The last three serve next-task (labeling.leases._claimable_steps): each step reads the first row
        # of one partial index in its order, so claiming stays flat with a million open tasks. The order is
        # (created_at, id), not id alone: the primary key also gives id order, and with LIMIT 1 the
        # planner took it (guessing matches spread evenly), reading every older project's rows first.
        indexes = [
            models.Index(fields=["project", "stage", "status"]),
            models.Index(
                fields=["project", "stage", "created_at", "id"],
                condition=models.Q(status="open", assignee__isnull=True),
                name="task_open_queue",
            ),
            models.Index(
                fields=["assignee", "project", "stage", "created_at", "id"],
                condition=models.Q(assignee__isnull=False),
                name="task_assigned",
            ),
            models.Index(
                fields=["project", "stage", "lease_expires_at", "id"],
                condition=models.Q(status="in_progress"),
                name="task_lease_expiry",
            ),
            # Honeypots (gold tasks of a project with a honeypot_rate) waiting to be mixed into a queue.
            models.Index(
                fields=["project", "stage", "created_at", "id"],
                condition=models.Q(is_gold=True, status="open", assignee__isnull=True),
                name="task_gold_pool",
            ),
            # The manager's task list (labeling.tasklist): a page in either sort order reads one index.
            models.Index(fields=["project", "id"], name="task_list_id"),
            models.Index(fields=["project", "updated_at", "id"], name="task_list_updated"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.stage}/{self.status})"


class ReplicaKind(models.TextChoices):
    HONEYPOT = "honeypot", "A gold task mixed into the labeler's queue"
    CONSENSUS = "consensus", "One of a consensus task's independent annotations"


class TaskReplica(models.Model):
    """One person's independent pass over a first-stage task that several people annotate: a honeypot
    (a gold task handed to many labelers, never twice to one) or one of a consensus task's N annotations.
    The task's annotation goes back to `base_revision` after each pass (so the next person starts from
    the same pre-label); what the person submitted is kept here."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="replicas")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=ReplicaKind.choices)
    base_revision = models.PositiveIntegerField()
    regions = models.JSONField(default=list)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Consensus: the share of the merged regions this pass agreed with (F1 of its regions vs the merge).
    agreement = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="one_replica_per_user")]
        indexes = [models.Index(fields=["user", "task"])]


class ConsensusResult(models.Model):
    """How a consensus task's passes were merged: per merged region its agreement (share of the
    annotators who drew it) and mean IoU between their versions."""

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="consensus")
    annotators = models.PositiveSmallIntegerField()
    quorum = models.PositiveSmallIntegerField()
    min_iou = models.FloatField()
    # [{"id", "label", "agreement", "votes", "mean_iou", "members": [{"user", "region"}]}]
    regions = models.JSONField(default=list)
    revision = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class Annotation(models.Model):
    """The regions of a task. Never edited in place: each save adds an AnnotationRevision."""

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="annotation")
    current_revision = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"annotation of task {self.task_id} at revision {self.current_revision}"


class RegionSource(models.TextChoices):
    AI = "ai", "AI prediction"
    HUMAN = "human", "Human"


class AnnotationRevision(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    # [{"id", "label", "kind", "polygons": [{"exterior", "holes"}], "rle", "source", "prediction_id", "score"}]
    regions = models.JSONField(default=list)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    stage = models.CharField(max_length=40)
    # {"added": [ids], "removed": [ids], "changed": [ids]} against the revision before
    summary = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "number"], name="revision_number_unique")
        ]

    def __str__(self) -> str:
        return f"revision {self.number} of task {self.annotation.task_id}"


class Comment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    text = models.TextField()
    region_id = models.CharField(max_length=64, blank=True)  # pinned to a region of the annotation
    x = models.FloatField(null=True, blank=True)  # or to a point, in pixel coordinates
    y = models.FloatField(null=True, blank=True)
    frame = models.PositiveIntegerField(null=True, blank=True)  # video tasks: pinned to this frame
    revision = models.PositiveIntegerField(null=True, blank=True)  # the revision the comment was made on
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class EventKind(models.TextChoices):
    CLAIMED = "claimed", "Claimed"
    SUBMITTED = "submitted", "Submitted from the first stage"
    ACCEPTED = "accepted", "Accepted by a reviewer"
    FIX_ACCEPTED = "fix_accepted", "Fixed and accepted by a reviewer"
    REJECTED = "rejected", "Rejected by a reviewer"
    SKIPPED_BY_SAMPLING = "skipped_by_sampling", "Passed a stage that did not sample it"
    REASSIGNED = "reassigned", "Reassigned by a manager"
    RELEASED = "released", "Given back to the queue by its assignee"
    LEASE_EXPIRED = "lease_expired", "Lease expired; back in the queue"
    GOLD_MARKED = "gold_marked", "Marked as a gold task"


class TaskEvent(models.Model):
    """One thing that happened to a task: the timeline and the metrics read these, never rewrite them."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    from_stage = models.CharField(max_length=40, blank=True)
    to_stage = models.CharField(max_length=40, blank=True)  # "done" once accepted after the last stage
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revision = models.PositiveIntegerField(null=True, blank=True)  # the annotation revision acted on
    # e.g. {"claimed_at", "work_seconds", "active_seconds"} on submit/accept/reject, {"assignee"} on reassign
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["task", "created_at"]), models.Index(fields=["kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} on task {self.task_id}"
