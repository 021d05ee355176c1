"""The slice each phase opens at (annotations.opening): plain values, no database."""

from annotations.opening import Slice, Stack, opening_slices


def stack(prefix, n=10, frame="FOR-1", spacing=2.5, offset=0.0):
    return Stack(frame, tuple(Slice(f"{prefix}{i}", offset + i * spacing) for i in range(n)))


def test_without_a_reference_roi_every_phase_opens_at_its_middle_slice():
    stacks = {"NC": stack("nc", 10), "CM": stack("cm", 7)}
    assert opening_slices(stacks, {}) == {"NC": "nc5", "CM": "cm3"}


def test_a_phase_with_a_reference_roi_opens_at_the_rois_slice():
    stacks = {"CM": stack("cm"), "NG": stack("ng")}
    assert opening_slices(stacks, {"CM": "cm2", "NG": "ng7"}) == {"CM": "cm2", "NG": "ng7"}


def test_a_phase_without_one_opens_at_the_level_of_the_first_phase_that_has_one():
    # EX is sampled every 5 mm from 1 mm: CM's ROI at 5 mm (cm2) is nearest to ex1 (6 mm).
    stacks = {
        "NC": stack("nc"),
        "CM": stack("cm"),
        "NG": stack("ng"),
        "EX": stack("ex", spacing=5.0, offset=1.0),
    }
    opening = opening_slices(stacks, {"CM": "cm2", "NG": "ng7"})
    assert opening == {"NC": "nc2", "CM": "cm2", "NG": "ng7", "EX": "ex1"}


def test_another_frame_of_reference_or_unknown_positions_fall_back_to_the_middle_slice():
    stacks = {
        "CM": stack("cm"),
        "NG": stack("ng", frame="FOR-2"),
        "EX": Stack("FOR-1", tuple(Slice(f"ex{i}", None) for i in range(6))),
    }
    assert opening_slices(stacks, {"CM": "cm1"}) == {"CM": "cm1", "NG": "ng5", "EX": "ex3"}


def test_an_roi_on_an_instance_outside_the_shown_stack_is_ignored_and_empty_stacks_are_left_out():
    stacks = {"CM": stack("cm"), "NG": stack("ng"), "EX": Stack("FOR-1", ())}
    assert opening_slices(stacks, {"CM": "other-series-instance", "NG": "ng8", "NC": "nc1"}) == {
        "CM": "cm8",
        "NG": "ng8",
    }
