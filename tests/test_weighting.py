"""An MR's weighting from its DICOM tags: the protocol's own words first, then TR and TE."""

from __future__ import annotations

import pytest

from imtrans_core.data.weighting import weighting_from_tags


@pytest.mark.parametrize(
    ("tags", "weighting", "why"),
    [
        (
            {"description": "t2_tse_tra", "tr": "500", "te": "10"},
            "t2",
            "description 't2_tse_tra'",
        ),  # words win
        ({"description": "T1 VIBE DIXON"}, "t1", "description 'T1 VIBE DIXON'"),
        ({"description": "T1 FLAIR sag"}, "t1", "description 'T1 FLAIR sag'"),  # explicit T1 before FLAIR
        ({"description": "FLAIR_tra"}, "t2", "description 'FLAIR_tra'"),
        ({"description": "", "protocol": "PD_FS_cor"}, "pd", "protocol 'PD_FS_cor'"),
        ({"sequence": "*tse2d1_15"}, "", ""),  # a sequence name alone that says no weighting
        ({"description": "localizer", "tr": "4000", "te": "100"}, "t2", "TR 4000 ms, TE 100 ms"),
        ({"tr": "550", "te": "12"}, "t1", "TR 550 ms, TE 12 ms"),  # spin echo
        ({"tr": "7.2", "te": "2.46"}, "t1", "TR 7.2 ms, TE 2.46 ms"),  # spoiled gradient echo (VIBE)
        ({"tr": "3000", "te": "20"}, "pd", "TR 3000 ms, TE 20 ms"),
        ({"tr": "1000", "te": "45"}, "", ""),  # between the rules: unknown
        ({"tr": "4000"}, "", ""),
        ({"tr": "abc", "te": "90"}, "", ""),
        ({"description": "dt2x map", "tr": "1000", "te": "45"}, "", ""),  # 't2' inside a word is not a name
        ({}, "", ""),
    ],
)
def test_weighting_from_tags(tags, weighting, why):
    assert weighting_from_tags(tags) == (weighting, why)
