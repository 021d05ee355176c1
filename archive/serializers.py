from rest_framework import serializers

from .models import Instance, Phase, Series, Study, Upload


class InstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = [
            "sop_instance_uid",
            "instance_number",
            "slice_position",
            "image_position_patient",
            "image_orientation_patient",
            "pixel_spacing",
            "slice_thickness",
            "rows",
            "columns",
            "number_of_frames",
            "rescale_intercept",
            "rescale_slope",
            "window_center",
            "window_width",
            "transfer_syntax_uid",
        ]


class SeriesSerializer(serializers.ModelSerializer):
    study_instance_uid = serializers.CharField(source="study.study_instance_uid", read_only=True)
    phase_set_by = serializers.StringRelatedField()
    n_instances = serializers.IntegerField(source="instances.count", read_only=True)

    class Meta:
        model = Series
        fields = [
            "series_instance_uid",
            "study_instance_uid",
            "modality",
            "series_number",
            "description",
            "phase",
            "phase_source",
            "phase_reason",
            "automatic_phase",
            "phase_set_by",
            "phase_set_at",
            "acquisition_time",
            "contrast_bolus_agent",
            "n_instances",
        ]
        read_only_fields = [f for f in fields if f != "phase"]


class PhaseOverrideSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=Phase.choices)


class StudySerializer(serializers.ModelSerializer):
    patient_id = serializers.CharField(source="patient.patient_id")
    patient_sex = serializers.CharField(source="patient.sex")
    patient_age = serializers.IntegerField(source="patient.age_years")
    series = SeriesSerializer(many=True, read_only=True)

    class Meta:
        model = Study
        fields = [
            "study_instance_uid",
            "patient_id",
            "patient_sex",
            "patient_age",
            "study_date",
            "description",
            "series",
        ]


class UploadSerializer(serializers.ModelSerializer):
    user = serializers.StringRelatedField()

    class Meta:
        model = Upload
        fields = [
            "id",
            "user",
            "channel",
            "status",
            "deidentify",
            "n_stored",
            "n_duplicate",
            "n_rejected",
            "created_at",
            "report",
        ]


class UploadRequestSerializer(serializers.Serializer):
    """Multipart upload: one or more ``files`` (DICOM files and/or zip archives)."""

    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    deidentify = serializers.BooleanField(default=False)
