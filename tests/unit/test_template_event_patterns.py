"""hyenaflow.local.event_patterns: EventBridge's documented matching rules."""

from __future__ import annotations

import pytest

from hyenaflow.local.event_patterns import PatternError, matches

EVENT = {
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {
        "bucket": {"name": "data"},
        "object": {"key": "incoming/Phage.FA", "size": 49963},
        "tags": ["a", "b"],
        "flag": True,
        "nothing": None,
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.s3"]}, True),
        ({"source": ["aws.omics", "aws.s3"]}, True),
        ({"source": ["aws.omics"]}, False),
        ({"detail": {"bucket": {"name": ["data"]}}}, True),
        ({"detail": {"bucket": {"name": ["other"]}}}, False),
        ({"detail": {"missing": ["x"]}}, False),
        ({"detail": {"object": {"key": [{"prefix": "incoming/"}]}}}, True),
        ({"detail": {"object": {"key": [{"prefix": "staged/"}]}}}, False),
        ({"detail": {"object": {"key": [{"suffix": ".FA"}]}}}, True),
        ({"detail": {"object": {"key": [{"suffix": {"equals-ignore-case": ".fa"}}]}}}, True),
        ({"detail": {"object": {"key": [{"prefix": {"equals-ignore-case": "INCOMING/"}}]}}}, True),
        ({"detail": {"object": {"key": [{"equals-ignore-case": "INCOMING/phage.fa"}]}}}, True),
        ({"detail": {"object": {"key": [{"wildcard": "incoming/*.FA"}]}}}, True),
        ({"detail": {"object": {"key": [{"wildcard": "incoming/*.fa"}]}}}, False),
        ({"detail": {"object": {"size": [{"numeric": [">", 0, "<=", 50000]}]}}}, True),
        ({"detail": {"object": {"size": [{"numeric": [">", 50000]}]}}}, False),
        ({"detail": {"object": {"size": [49963]}}}, True),
        ({"detail": {"object": {"key": [{"anything-but": ["incoming/x.fa"]}]}}}, True),
        ({"detail": {"object": {"key": [{"anything-but": {"prefix": "incoming/"}}]}}}, False),
        ({"detail": {"object": {"key": [{"exists": True}]}}}, True),
        ({"detail": {"object": {"etag": [{"exists": False}]}}}, True),
        ({"detail": {"object": {"key": [{"exists": False}]}}}, False),
        ({"detail": {"object": [{"exists": True}]}}, False),  # exists matches leaves only
        ({"detail": {"tags": ["b"]}}, True),  # any element of an array
        ({"detail": {"tags": ["c"]}}, False),
        ({"detail": {"flag": [True]}}, True),
        ({"detail": {"flag": ["true"]}}, False),
        ({"detail": {"nothing": [None]}}, True),
        ({"$or": [{"source": ["aws.omics"]}, {"detail-type": ["Object Created"]}]}, True),
        ({"$or": [{"source": ["aws.omics"]}, {"detail-type": ["Object Deleted"]}]}, False),
    ],
)
def test_pattern_matching_follows_eventbridge_rules(pattern: dict, expected: bool) -> None:
    assert matches(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": "aws.s3"},  # leaves must be arrays
        {"source": []},
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"source": [{"nonsense": 1}]},
        {"detail": {"object": {"size": [{"numeric": [">"]}]}}},
        {"detail": {"object": {"size": [{"numeric": ["~", 1]}]}}},
    ],
)
def test_malformed_patterns_are_reported_not_silently_unmatched(pattern: dict) -> None:
    with pytest.raises(PatternError):
        matches(pattern, EVENT)
