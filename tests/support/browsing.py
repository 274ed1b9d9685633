"""Browser helpers shared by the staff-page tests: log in, scan with axe-core."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
REPO_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "staff-Passphrase-9"


def log_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Through the site's own log-in page, as a person would."""
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form [type=submit]").click()
    page.wait_for_url(f"{base_url}/")
    expect(page.get_by_test_id("status")).not_to_have_text("Connecting…")


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2.x A/AA)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const found = await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
            });
            return found.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.impact} ${v.id}: ${v.help} @ ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(" | ")}`);
        }"""
    )
    return result
