"""Dollars per published run and peak FLOP per dollar in `vision-jax plan`."""

import pytest

from vision_jax.scaling import hardware, planner


def test_published_runs_are_priced_from_chip_hours_and_the_cited_price():
    rows = {r["name"]: r for r in planner.reconcile()}
    roberta = rows["RoBERTa-Large"]  # 1024 V100 for 1 day, published
    assert roberta["usd_basis"] == "published"
    assert roberta["chip_hours"] == 1024 * 24
    assert roberta["usd"] == pytest.approx(1024 * 24 * hardware.chip("V100").usd_per_chip_hour)
    palm = rows["PaLM 540B"]  # time not published: the estimate at its published MFU
    assert palm["usd_basis"] == "estimated"
    assert palm["usd"] == pytest.approx(6144 * palm["estimated_days_at_published_mfu"] * 24 * 3.22)
    assert rows["GPT-3 175B"]["usd"] is None  # no chip count
    text = planner.format_reconcile(list(rows.values()))
    header = text.splitlines()[0].split()
    # The columns other tools read stay first and in order; the cost is appended.
    assert header[:3] == ["model", "hardware", "tokens"] and header[-2:] == ["$", "on-demand"]
    assert "$60.9k" in text and "$18M (est.)" in text


def test_a_chip_without_a_current_price_gets_no_cost_and_says_why():
    row = {"published_days": 2.0, "estimated_days_at_published_mfu": None,
           "estimated_days": None, "chips": 8}
    assert planner.run_cost(row, hardware.chip("H100 PCIe")) == {"chip_hours": 8 * 2 * 24}
    assert "no Google Cloud offer" in hardware.chip("H100 PCIe").price_note


def test_peak_flop_per_dollar_table_is_by_year_from_the_cited_prices():
    rows = planner.prices()
    assert [r["year"] for r in rows] == sorted(r["year"] for r in rows)
    for r in rows:
        chip = hardware.chip(r["chip"])
        if chip.usd_per_chip_hour:
            assert r["gflop_per_usd"] == pytest.approx(
                chip.peak_flops * 3600 / chip.usd_per_chip_hour / 1e9)
        else:
            assert r["gflop_per_usd"] is None and r["note"]
    by = {r["chip"]: r["gflop_per_usd"] for r in rows}
    assert by["H100"] / by["P100"] == pytest.approx(16.2, abs=0.1)  # the trend docs/SCALING.md quotes
    assert by["TPUv6e"] / by["TPUv2"] == pytest.approx(8.5, abs=0.05)
    assert "skypilot-catalog" in planner.format_prices(rows) and hardware.PRICE_DATE in hardware.PRICE_SOURCE
