"""The web UI in headless Chromium (Debian's, driven by Playwright), against `hub serve`.

A person signs up, signs in, makes an organisation and a team, adds a member, grants the
team write on a repository, sees the image pushed there down to its layers and config,
revokes the grant (and the member's push is refused), and exports the audit log as CSV.
axe-core (from npm) checks each main page for serious or critical accessibility
violations; screenshots of the main pages are saved under the test's output directory.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.images import make_image, write_image_layout
from tests.support.servers import HubProcess, start_hub

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
PORT = 5031
PASSWORD = "a-long-enough-password-1"


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core's browser bundle, installed from npm for this run."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (bin/install-test-deps)")
    prefix = tmp_path_factory.mktemp("axe")
    done = subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix)]
        + ["axe-core@4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if done.returncode != 0 or not script.exists():
        pytest.skip(f"npm could not install axe-core: {done.stderr[-500:]}")
    return script


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    env = {"DATABASE_URL": "", "HUB_AUDIT_SEAL_INTERVAL": "1", "HUB_AUTH_CACHE_SECONDS": "0"}
    process = start_hub(
        tmp_path_factory.mktemp("hub-web"),
        env=env,
        port=PORT,
        args=["--workers", "1", "--threads", "4"],
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (bin/install-test-deps)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


class Checker:
    """Screenshots and axe-core runs for one browser page."""

    def __init__(self, page: Any, shots: Path, axe: Path) -> None:
        self.page, self.shots, self.axe = page, shots, axe

    def look(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        self.page.add_script_tag(path=str(self.axe))
        result = self.page.evaluate("async () => await axe.run(document)")
        bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, [
            (v["id"], v["impact"], [n["html"][:120] for n in v["nodes"][:3]]) for v in bad
        ]


def sign_up(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/accounts/signup/")
    page.fill("input[name=email]", f"{username}@example.com")
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{url}/")


def skopeo_push(url: str, who: str, layout: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """`skopeo copy` of the layout's image to doraorg/app:<tag>, signed in as `who`."""
    host = url.removeprefix("http://")
    return subprocess.run(
        [
            "skopeo", "copy", "--dest-tls-verify=false", f"--dest-creds={who}:{PASSWORD}",
            f"oci:{layout}:src", f"docker://{host}/doraorg/app:{tag}",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_it_walks_through_the_web_ui(
    hub: HubProcess, browser: Any, axe_script: Path, shots: Path, tmp_path: Path
) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (bin/install-test-deps)")
    url = hub.url
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    check = Checker(page, shots, axe_script)

    # Sign up, sign out, sign in.
    page.goto(f"{url}/accounts/signup/")
    check.look("signup")
    sign_up(page, url, "dora")
    assert "Signed in as" in page.inner_text("header")
    page.click("header button:has-text('Sign out')")
    page.goto(f"{url}/accounts/login/")
    check.look("login")
    page.fill("input[name=login]", "dora")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{url}/")
    check.look("home-empty")

    # A second person, for the team.
    other = browser.new_context().new_page()
    sign_up(other, url, "erin")

    # An organisation, a team with erin in it.
    page.click("text=New organisation")
    page.fill("#id_name", "doraorg")
    page.fill("#id_display_name", "Dora's organisation")
    page.click("form button:has-text('Create organisation')")
    page.wait_for_url(f"{url}/orgs/doraorg/")
    page.fill("#id_team-name", "devs")
    page.click("form button:has-text('Create team')")
    page.wait_for_url(f"{url}/orgs/doraorg/teams/devs/")
    page.fill("#id_member-username", "erin")
    page.click("form button:has-text('Add member')")
    assert "Added erin to devs" in page.inner_text("main")

    # An image, pushed by dora with skopeo; the team may write it.
    image = make_image(layer_sizes=(2048, 4096))
    layout = write_image_layout(tmp_path / "layout", image, "src")
    pushed = skopeo_push(url, "dora", layout, "1.0")
    assert pushed.returncode == 0, pushed.stderr
    page.fill("#id_grant-repository", "doraorg/app")
    page.select_option("#id_grant-level", label="write")
    page.click("form button:has-text('Save grant')")
    assert "devs may now write doraorg/app" in page.inner_text("main")
    check.look("team")
    pushed = skopeo_push(url, "erin", layout, "erin")
    assert pushed.returncode == 0, pushed.stderr

    # The repository, its tags, the manifest's layers and config.
    page.goto(f"{url}/r/doraorg/app/")
    tags = page.inner_text("#tags")
    assert "1.0" in tags and "erin" in tags and image.digest[:19] in tags
    assert "linux/amd64" in tags  # the image's platform, read from its config
    check.look("repository")
    page.fill("#tag-filter", "eri")  # htmx swaps the table in place
    page.wait_for_function("!document.querySelector('#tags').innerText.includes('1.0')")
    assert "erin" in page.inner_text("#tags") and "q=eri" in page.url
    page.fill("#tag-filter", "")
    page.wait_for_function("document.querySelector('#tags').innerText.includes('1.0')")
    page.click("#tags a:text-is('1.0')")
    main = page.inner_text("main")
    assert "application/vnd.oci.image.layer.v1.tar+gzip" in main
    assert "linux/amd64" in main and "/bin/true" in main and "e2e layer 1" in main
    check.look("manifest")
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=context.storage_state()
    )
    phone_page = phone.new_page()
    phone_page.goto(f"{url}/r/doraorg/app/-/manifests/{image.digest}/")
    assert "application/vnd.oci.image.layer.v1.tar+gzip" in phone_page.inner_text("main")
    phone_page.screenshot(path=str(shots / "manifest-phone.png"), full_page=True)
    phone.close()

    # Revoke the grant: erin's push is refused.
    page.goto(f"{url}/orgs/doraorg/teams/devs/")
    page.fill("#id_grant-repository", "doraorg/app")
    page.select_option("#id_grant-level", value="0")
    page.click("form button:has-text('Save grant')")
    refused = skopeo_push(url, "erin", layout, "again")
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower()

    # Repository settings: a grant to a user; the organisation's webhooks and policies.
    page.goto(f"{url}/r/doraorg/app/-/settings/")
    page.select_option("#id_grant-kind", value="user")
    page.fill("#id_grant-name", "erin")
    page.select_option("#id_grant-level", label="read")
    page.click("form button:has-text('Save grant')")
    assert "erin may now read doraorg/app" in page.inner_text("main")
    check.look("repository-settings")
    page.goto(f"{url}/orgs/doraorg/operations/")
    check.look("organisation-operations")

    # Organisation, settings and tokens pages.
    page.goto(f"{url}/orgs/doraorg/")
    assert "erin" in page.inner_text("main")
    check.look("organisation")
    page.goto(f"{url}/settings/tokens/")
    page.fill("#id_name", "laptop")
    page.click("form button:has-text('Create token')")
    assert page.inner_text("#new-token").startswith("hubt_")
    check.look("tokens")
    page.goto(f"{url}/accounts/email/")
    check.look("settings-email")

    # The audit log, exported as CSV (sealed events only: wait for the sealer).
    page.goto(f"{url}/audit/?action=org.create")
    assert "org.create" in page.inner_text("main")
    check.look("audit")
    for _ in range(20):
        with page.expect_download() as download_info:
            page.click("a:text-is('CSV')")
        rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
        if rows:
            break
        page.wait_for_timeout(500)
    assert rows and {row["action"] for row in rows} == {"org.create"}
    assert rows[0]["organisation"] == "doraorg" and rows[0]["hash"]

    # Explore and an error page, as nobody.
    anonymous = browser.new_context().new_page()
    anonymous.goto(f"{url}/explore/")
    assert "doraorg/app" not in anonymous.inner_text("main")
    Checker(anonymous, shots, axe_script).look("explore-anonymous")
    anonymous.goto(f"{url}/r/doraorg/app/")
    assert "Nothing here" in anonymous.inner_text("main")
    Checker(anonymous, shots, axe_script).look("not-found")
    print(f"screenshots in {shots}")
