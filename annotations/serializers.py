"""JSON forms of reader studies, lesions, ROIs, pathology and calls (the frontend's contract)."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from archive.models import Phase, Study

from . import access
from .models import ROI, Lesion, Pathology, ReaderCall, ReaderStudy, Session, Side, Subtype


class ReaderStudySerializer(serializers.ModelSerializer):
    studies = serializers.SlugRelatedField(
        many=True, slug_field="study_instance_uid", queryset=Study.objects.all(), required=False
    )
    readers = serializers.SlugRelatedField(
        many=True, slug_field="username", queryset=get_user_model().objects.all(), required=False
    )
    n_cases = serializers.IntegerField(read_only=True)
    n_lesions = serializers.IntegerField(read_only=True)

    class Meta:
        model = ReaderStudy
        fields = [
            "id",
            "name",
            "instructions",
            "state",
            "case_order",
            "seed",
            "design",
            "washout_days",
            "studies",
            "readers",
            "n_cases",
            "n_lesions",
            "created_at",
        ]
        read_only_fields = ["state", "created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["studies"] = [
            case.study.study_instance_uid
            for case in instance.cases.select_related("study").order_by("position", "id")
        ]
        for name in ("n_cases", "n_lesions"):
            if data.get(name) is None:
                data[name] = getattr(instance, name, None)
        if data["n_cases"] is None:
            data["n_cases"] = instance.cases.count()
        if data["n_lesions"] is None:
            data["n_lesions"] = access.reader_study_lesions(instance).count()
        return data


class ROISerializer(serializers.ModelSerializer):
    series = serializers.CharField(source="series.series_instance_uid", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = ROI
        fields = [
            "id",
            "lesion",
            "series",
            "phase",
            "sop_instance_uid",
            "frame_number",
            "tool",
            "points",
            "stats",
            "is_reference",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ROIInputSerializer(serializers.Serializer):
    """Request body of ``POST /rois/``; the geometry rules are checked by ``annotations.services``."""

    lesion = serializers.IntegerField()
    series = serializers.CharField(
        help_text="SeriesInstanceUID; the ROI's phase is the series' phase"
    )
    sop_instance_uid = serializers.CharField()
    frame_number = serializers.IntegerField(default=1, min_value=1)
    tool = serializers.ChoiceField(choices=ROI.Tool.choices)
    points = serializers.JSONField(help_text="[[x, y, z], ...] in patient coordinates (mm)")
    stats = serializers.JSONField(required=False, default=dict)
    is_reference = serializers.BooleanField(default=False)
    phase = serializers.ChoiceField(
        choices=Phase.choices, required=False, help_text="optional; must match the series"
    )


class PathologySerializer(serializers.ModelSerializer):
    entered_by = serializers.CharField(source="entered_by.username", read_only=True, default=None)
    malignant = serializers.BooleanField(
        required=False, allow_null=True, help_text="optional; follows from subtype"
    )

    class Meta:
        model = Pathology
        fields = ["subtype", "malignant", "source", "date", "revision", "entered_by", "entered_at"]
        read_only_fields = ["revision", "entered_by", "entered_at"]


class ReaderCallSerializer(serializers.ModelSerializer):
    reader = serializers.CharField(source="reader.username", read_only=True)
    changed_by = serializers.CharField(source="changed_by.username", read_only=True, default=None)
    locked = serializers.BooleanField(read_only=True)

    class Meta:
        model = ReaderCall
        fields = [
            "id",
            "reader_study",
            "lesion",
            "reader",
            "session",
            "malignant",
            "probability",
            "subtype_guess",
            "time_spent_s",
            "locked",
            "locked_at",
            "revision",
            "is_current",
            "supersedes",
            "blinded",
            "simulated",
            "changed_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CallValuesSerializer(serializers.Serializer):
    """The values of a call (``PATCH /calls/{id}/``, ``POST /calls/{id}/revise/``)."""

    malignant = serializers.BooleanField()
    probability = serializers.IntegerField(
        min_value=0, max_value=100, help_text="probability of malignancy, %"
    )
    subtype_guess = serializers.ChoiceField(
        choices=Subtype.choices, allow_blank=True, required=False, default=""
    )
    time_spent_s = serializers.FloatField(
        min_value=0, required=False, allow_null=True, default=None
    )


class CallInputSerializer(CallValuesSerializer):
    """``POST /calls/``: creates the current call or updates it while unlocked (autosave)."""

    reader_study = serializers.IntegerField()
    lesion = serializers.IntegerField()
    lock = serializers.BooleanField(default=False, help_text="lock the call after saving it")
    session = serializers.ChoiceField(
        choices=Session.choices,
        default=Session.UNAIDED,
        help_text="aided: the call after seeing the model's output (sequential reader studies, unaided call locked)",
    )


class LesionSerializer(serializers.ModelSerializer):
    """A lesion with its ROIs; ``pathology`` only where the requester may see it; ``reading`` (listed with
    ``?reader_study=`` of a study with an aided session, for its readers): their sessions on the lesion."""

    study = serializers.SlugRelatedField(
        slug_field="study_instance_uid", queryset=Study.objects.all()
    )
    patient_id = serializers.CharField(source="study.patient.patient_id", read_only=True)
    side = serializers.ChoiceField(choices=Side.choices, default=Side.UNKNOWN)
    rois = ROISerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = Lesion
        fields = [
            "id",
            "study",
            "patient_id",
            "label",
            "side",
            "location",
            "long_axis_mm",
            "created_by",
            "created_at",
            "updated_at",
            "rois",
        ]
        read_only_fields = ["created_at", "updated_at"]
        validators = []  # label uniqueness is checked by the service, naming the field

    def to_representation(self, instance):
        data = super().to_representation(instance)
        visible = self.context.get("truth_visible")
        user = self.context["request"].user if "request" in self.context else None
        may_see = (
            instance.pk in visible if visible is not None else access.may_see_truth(user, instance)
        )
        if may_see:
            pathology = getattr(instance, "pathology", None)
            data["pathology"] = (
                PathologySerializer(pathology).data if pathology is not None else None
            )
        reading = self.context.get("reading_schedule", {}).get(instance.pk)
        if reading is not None:
            data["reading"] = ReadingScheduleSerializer(reading).data
        return data


class ReadingScheduleSerializer(serializers.Serializer):
    """A reader's two reads of a lesion in a reader study with an aided session (``access.reading_schedule``)."""

    first_session = serializers.ChoiceField(choices=Session.choices)
    second_session = serializers.ChoiceField(choices=Session.choices)
    washout_days = serializers.IntegerField(
        help_text="crossover: days between the first read's lock and the second read"
    )
    second_read_opens = serializers.DateTimeField(
        allow_null=True, help_text="None until the first read is locked"
    )
    second_read_open = serializers.BooleanField(
        help_text="whether the second read (its call, the model's output) is allowed now"
    )
