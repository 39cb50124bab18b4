"""The one selection model, without a server: names, globs, clusters, sites, tags, exclusions, verdicts."""

from __future__ import annotations

import pytest

from hcibenefit.errors import UsageError
from hcibenefit.inventory import parse_inventory
from hcibenefit.operations.selection import Selection

INVENTORY = """
clusters:
  - {name: sea-hci01, site: seattle, tags: [production, avd], nodes: [sea-n1, sea-n2]}
  - {name: sea-lab01, site: seattle, tags: [lab], nodes: [lab-n1]}
  - {name: fra-hci01, site: frankfurt, tags: [production], nodes: [fra-n1, fra-n2]}
policy:
  exclude_globs: ["*-template"]
"""
VMS = ["avd-01", "AVD-02", "avd-[ab]", "avd-a", "w11-01", "gold-template", "sql-01"]


@pytest.fixture
def inventory():  # type: ignore[no-untyped-def]
    return parse_inventory(INVENTORY, "inv.yaml")


def names(selection: Selection, vms: list[str] = VMS, exclusion=lambda n: None) -> list[str]:  # type: ignore[no-untyped-def]
    return selection.match_vms(vms, name_of=lambda v: v, exclusion=exclusion).selected


def test_globs_are_case_insensitive_like_hyper_v_and_repeated_vms_accumulate() -> None:
    assert names(Selection(vms=("avd-0*",))) == ["avd-01", "AVD-02"]
    assert names(Selection(vms=("AVD-0?", "w11*"))) == ["avd-01", "AVD-02", "w11-01"]
    assert names(Selection(vms=("Sql-01",))) == ["sql-01"]


def test_an_exact_name_wins_over_its_glob_reading() -> None:
    # A VM may be called avd-[ab]; naming it selects that VM, not avd-a (issue 9: wildcards).
    assert names(Selection(vms=("avd-[ab]",))) == ["avd-[ab]"]
    assert names(Selection(vms=("avd-[a]",))) == ["avd-a"]


def test_a_glob_shows_what_it_expanded_to() -> None:
    match = Selection(vms=("w1*", "sql-01")).match_vms(VMS, name_of=lambda v: v)
    assert match.expansions == [("w1*", ["w11-01"])]


def test_unmatched_names_are_a_usage_error_with_the_closest_names() -> None:
    match = Selection(vms=("avd-0l", "zzz*")).match_vms(VMS, name_of=lambda v: v)
    assert match.unmatched == ["avd-0l", "zzz*"]
    with pytest.raises(UsageError) as caught:
        match.raise_unmatched(VMS, where="anywhere", nothing_done="nothing was changed")
    assert caught.value.exit_code == 2
    assert "avd-0l: did you mean" in (caught.value.hint or "") and "avd-01" in (caught.value.hint or "")


def test_policy_exclusions_are_left_out_of_globs_and_all_but_not_out_of_exact_names(inventory) -> None:  # type: ignore[no-untyped-def]
    exclusion = inventory.policy.exclusion
    assert exclusion("Gold-Template") == "*-template" and exclusion("avd-01") is None
    match = Selection(all=True).match_vms(VMS, name_of=lambda v: v, exclusion=exclusion)
    assert "gold-template" not in match.selected and match.excluded == [("gold-template", "*-template")]
    named = Selection(vms=("gold-template",)).match_vms(VMS, name_of=lambda v: v, exclusion=exclusion)
    assert named.selected == ["gold-template"] and named.excluded == []


def test_clusters_by_name_glob_site_and_tag(inventory) -> None:  # type: ignore[no-untyped-def]
    def pick(**kwargs) -> list[str]:  # type: ignore[no-untyped-def]
        return [c.name for c in Selection(**kwargs).select_clusters(inventory)]

    assert pick() == ["sea-hci01", "sea-lab01", "fra-hci01"]
    assert pick(clusters=("SEA-*",)) == ["sea-hci01", "sea-lab01"]
    assert pick(clusters=("fra-hci01", "sea-lab01")) == ["sea-lab01", "fra-hci01"]
    # Values of one option add up; different options narrow each other.
    assert pick(tags=("lab", "avd")) == ["sea-hci01", "sea-lab01"]
    assert pick(sites=("seattle",), tags=("production",)) == ["sea-hci01"]
    assert pick(nodes=("fra-n2",)) == ["fra-hci01"]


def test_unknown_clusters_sites_tags_and_nodes_are_usage_errors(inventory) -> None:  # type: ignore[no-untyped-def]
    for selection, needle in (
        (Selection(clusters=("sea-hci1",)), "did you mean sea-hci01"),
        (Selection(sites=("seatle",)), "did you mean seattle"),
        (Selection(tags=("prod",)), "production"),
        (Selection(nodes=("fra-n3",)), "fra-n1"),
    ):
        with pytest.raises(UsageError) as caught:
            selection.select_clusters(inventory)
        assert needle in f"{caught.value.message} {caught.value.hint}"
    with pytest.raises(UsageError, match="no cluster"):
        Selection(sites=("frankfurt",), tags=("lab",)).select_clusters(inventory)


def test_verdicts_are_case_insensitive_and_checked() -> None:
    selection = Selection(verdicts=("Missing", "BROKEN"))
    assert selection.keeps("missing") and selection.keeps("broken") and not selection.keeps("ok")
    assert Selection().keeps("anything")
    with pytest.raises(UsageError, match="no verdict 'mising'"):
        Selection(verdicts=("mising",)).check_verdicts(("ok", "missing"), command="status")


def test_explicit_tells_names_from_globs() -> None:
    selection = Selection(vms=("avd-01", "w11*"))
    assert selection.explicit("AVD-01") and not selection.explicit("w11-01")
    assert "--vm avd-01 --vm 'w11*'" in selection.describe()
