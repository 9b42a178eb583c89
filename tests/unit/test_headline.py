"""The report's summary sentences: ties are ties, one target gets no ranking, and a family
sentence appears only above a real family pair."""

from __future__ import annotations

from chatprobe.metrics import Cost, Dist
from chatprobe.report.headline import headline
from chatprobe.report.model import GroupStats, Report, compare_groups, family_pair


def group(provider: str, model: str, ttft: float, *, per_1k: float = 0.02) -> GroupStats:
    g = GroupStats(provider=provider, model=model, family=model, data_source="live")
    g.requests = g.ok = 100
    g.availability = 1.0
    g.ttft_ms = Dist(n=100, p50=ttft, p50_low=ttft - 1, p50_high=ttft + 1)
    g.itl_ms = Dist(n=100, p50=5.0)
    g.ttft_sorted = [ttft - 1.0 + k / 50 for k in range(100)]
    g.cost = Cost(per_1k_requests=per_1k, price_source="documented")
    return g


def report(*groups: GroupStats) -> Report:
    r = Report("r", "now", "0", [], ["live"], {"ttft_ms": 1000.0}, groups=list(groups))
    r.comparisons = compare_groups(r.groups)
    return r


def test_one_target_states_figures_without_rankings() -> None:
    lines = headline(report(group("local", "my-model", 120.0)))
    assert len(lines) == 1 and lines[0].startswith("local · my-model: median TTFT 120.0 ms")
    words = " ".join(lines).lower()
    for ranking in ("fastest", "cheapest", "most", "least", "lowest"):
        assert ranking not in words


def test_equal_figures_are_reported_as_ties() -> None:
    lines = headline(report(group("a", "m", 50.0), group("b", "m", 50.0)))
    assert "First token: a · m and b · m tie at a median TTFT of 50.0 ms." in lines
    assert any(line.startswith("Streaming: a · m and b · m tie") for line in lines)
    assert any(line.startswith("Cost: a · m and b · m tie at $0.02") for line in lines)
    assert any(line.startswith("Availability: every provider x model") for line in lines)
    assert not any(line.startswith(("Fastest", "Cheapest", "Most")) for line in lines)


def test_a_lead_inside_the_noise_is_called_unclear() -> None:
    lines = headline(report(group("a", "m", 50.0), group("b", "m", 51.0)))
    assert any("Fastest first token: a · m" in x and "not clear" in x for x in lines)
    clear = headline(report(group("a", "m", 50.0), group("b", "m", 80.0)))
    assert any("Fastest first token: a · m" in x and "not clear" not in x for x in clear)


def test_family_sentences_only_for_family_pairs() -> None:
    assert family_pair("gemini-2.0-flash", "gemini-1.5-flash")
    assert not family_pair("gpt-4o-mini", "llama-3-8b")
    assert not family_pair("gemini-2.0-flash", "gemini-2.0-flash")
    unrelated = report(group("local", "gpt-4o-mini", 50.0), group("local", "llama-3-8b", 90.0))
    assert not [c for c in unrelated.comparisons if c.kind == "family"]
    assert not any("ratio" in line for line in headline(unrelated))
    pair = report(
        group("aimlapi", "gemini-2.0-flash", 50.0), group("aimlapi", "gemini-1.5-flash", 120.0)
    )
    (comp,) = [c for c in pair.comparisons if c.kind == "family"]
    assert (comp.a, comp.b, comp.outcome) == ("gemini-2.0-flash", "gemini-1.5-flash", "a_faster")
    assert any(
        line.startswith("At aimlapi, gemini-2.0-flash / gemini-1.5-flash")
        for line in headline(pair)
    )
