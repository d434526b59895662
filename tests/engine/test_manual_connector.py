"""The manual connector: a system that staff handle by hand, named with its owner."""

from __future__ import annotations

from requests.connectors.registry import connector_for
from requests.engine.storemap import StoreMap

PAYROLL = {
    "system": "Payroll (on-premises)",
    "owner": "payroll-lead@example.com",
    "collections": {
        "payslips": {
            "categories": ["financial"],
            "erasure": {"action": "hold", "basis": "Tax law keeps payslips for 6 years"},
        }
    },
}


def connect(spec, **options):
    return connector_for(
        "manual", "manual:", StoreMap.model_validate(spec), name="payroll", **options
    )


def test_a_manual_store_with_a_system_and_an_owner_checks_ok():
    result = connect(PAYROLL).check()

    assert result.ok
    assert result.message == "manual store payroll: tasks go to the owner of Payroll (on-premises)"


def test_the_check_names_each_thing_that_is_missing():
    nothing = connect({}).check()
    no_owner = connect({"system": "Payroll"}).check()
    bad_owner = connect({"system": "Payroll", "owner": "the payroll team"}).check()

    assert not nothing.ok
    assert nothing.problems == [
        "the system's name is not set (map `system:`)",
        "the owner's email is not set (map `owner:`)",
    ]
    assert not no_owner.ok and no_owner.problems == ["the owner's email is not set (map `owner:`)"]
    assert not bad_owner.ok and bad_owner.problems == ["the owner is not an email address"]


def test_the_system_and_owner_may_come_from_options_instead_of_the_map():
    connector = connect({}, options={"system": "Archive boxes", "owner": "records@example.com"})

    assert connector.check().ok
    assert (connector.system, connector.owner) == ("Archive boxes", "records@example.com")


def test_a_manual_store_is_not_searchable_and_finds_nothing():
    connector = connect(PAYROLL)
    payslips = connector.store_map.collections["payslips"]

    assert connector.searchable is False
    assert list(connector.find(payslips, "email", ["ada@example.com"])) == []


def test_the_task_names_the_system_owner_instructions_and_what_the_system_holds():
    default = connect(PAYROLL).task("erasure")
    custom = connect(PAYROLL, options={"instructions": "Open Sage, menu Employees."}).task()

    assert default.system == "Payroll (on-premises)"
    assert default.owner == "payroll-lead@example.com"
    assert default.instructions.startswith("Erase every record of the person")
    assert "Payroll (on-premises)" in default.instructions
    assert default.collections == [
        {
            "name": "payslips",
            "categories": ["financial"],
            "erasure": "hold",
            "basis": "Tax law keeps payslips for 6 years",
        }
    ]
    assert custom.instructions == "Open Sage, menu Employees."
