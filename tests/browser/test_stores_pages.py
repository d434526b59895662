"""In Chromium: a DPO adds a store with discovery, reviews the drafted map as a table, edits the
map's YAML in the browser, sees the refused edit's problem beside the text with its line selected,
then fixes it and sees it saved."""

from __future__ import annotations

import re
import sqlite3

import pytest

from tests.browser.test_console_request_flow import sign_in

pytestmark = pytest.mark.slow


def _crm_database(path) -> str:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, phone TEXT);
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            contact_id INTEGER NOT NULL REFERENCES contacts(id),
            subject TEXT
        );
        INSERT INTO contacts VALUES (1, 'ada@example.com', '+441632960000');
        INSERT INTO tickets VALUES (5, 1, 'Refund');
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def test_a_dpo_adds_a_store_with_discovery_and_fixes_a_map_edit_the_portal_refused(
    live_portal, new_page, tmp_path, screenshot
):
    url = _crm_database(tmp_path / "crm.sqlite3")
    dpo = new_page()
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)

    dpo.get_by_role("link", name="Stores", exact=True).click()
    dpo.wait_for_url(re.compile(r"/staff/stores/$"))
    assert "demo-shop" in dpo.locator("#stores").inner_text()
    dpo.get_by_label("Name", exact=True).fill("crm")
    dpo.get_by_label("Kind").select_option(label="SQLite")
    url_input = dpo.get_by_label("Connection URL")
    assert url_input.get_attribute("type") == "password"
    url_input.fill(url)
    assert dpo.get_by_label("Draft the map from the store's schema (discovery)").is_checked()
    dpo.get_by_role("button", name="Add the store").click()

    dpo.wait_for_url(re.compile(r"/staff/stores/crm/$"))
    assert "Discovery drafted its map" in dpo.get_by_role("status").first.inner_text()
    table = dpo.get_by_role("table", name=re.compile("Collections"))
    contacts = table.get_by_role("row").filter(
        has=dpo.get_by_role("rowheader", name="contacts", exact=True)
    )
    assert "email: email" in contacts.inner_text()
    tickets = table.get_by_role("row").filter(
        has=dpo.get_by_role("rowheader", name="tickets", exact=True)
    )
    assert "contact_id → contacts.id" in tickets.inner_text()
    assert "crm.sqlite3" not in dpo.content()  # the URL is never shown back
    screenshot(dpo, "store-discovered")

    editor = dpo.get_by_label("Map (YAML)")
    drafted = editor.input_value()
    bad = drafted.replace("identity: email", "identity: emial", 1)
    bad_line = next(n for n, line in enumerate(bad.splitlines(), 1) if "emial" in line)
    editor.fill(bad)
    dpo.get_by_role("button", name="Save the map").click()

    problems = dpo.locator("#map-problems")
    assert f"Line {bad_line}" in problems.inner_text()
    assert "identity: emial" in problems.inner_text()
    assert dpo.get_by_role("alert").filter(has_text="The map was not saved").count() == 1
    editor = dpo.get_by_label("Map (YAML)")
    assert editor.get_attribute("aria-invalid") == "true"
    # The script selects the problem's line in the text box, ready to be corrected.
    selected = editor.evaluate("area => area.value.slice(area.selectionStart, area.selectionEnd)")
    assert selected == bad.splitlines()[bad_line - 1]

    editor.fill(editor.input_value().replace("identity: emial", "identity: email"))
    dpo.get_by_role("button", name="Save the map").click()
    dpo.wait_for_url(re.compile(r"/staff/stores/crm/$"))
    assert "The map is saved." in dpo.get_by_role("status").first.inner_text()
    assert dpo.locator("#map-problems").count() == 0
    history = dpo.locator("#history").inner_text()
    assert "dpo saved the map" in history
    assert "dpo added the store; discovery drafted a map" in history
