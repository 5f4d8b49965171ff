"""The mapping report: `nirc compile --report` / `nirc verify --report` write one self-contained
HTML page with pictures of the graph, the cores, the traffic, quantization error and rasters."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nirc.cli import main
from nirc.driver import compile
from nirc.mapping_report import core_contents, graph_layers, quantization_errors
from nirc.nirio import read

ROOT = Path(__file__).resolve().parents[1]
SRNN = ROOT / "examples" / "srnn.nir"
SECTIONS = ["graph", "cores", "traffic", "quantization"]


class Elements(HTMLParser):
    """Ids, image sources and links of a page."""

    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if key in attrs and tag != "img":
                self.links.append(attrs[key])


def elements(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def verified_report(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("report") / "build"
    assert main(["-q", "verify", str(SRNN), "--target", "loihi2", "-o", str(build), "--report",
                 "--steps", "30", "--samples", "1", "--calibration-steps", "10"]) == 0
    return build / "report.html"


def test_graph_layers_put_each_node_one_column_after_its_inputs_and_mark_back_edges():
    g, back = graph_layers(read(SRNN))
    layers = {n: g.nodes[n]["layer"] for n in g.nodes}
    assert layers == {"input": 0, "0": 1, "1.lif": 2, "1.w_rec": 3, "2": 3, "3": 4, "output": 5}
    assert back == {("1.w_rec", "1.lif")}


def test_core_contents_counts_each_layers_neurons_per_core(tmp_path):
    data = (ROOT / "targets" / "spinnaker2.yaml").read_text()
    chip = tmp_path / "chip.yaml"
    chip.write_text(data.replace("neurons: 256", "neurons: 40").replace("block_size: 64",
                                                                        "block_size: 8"))
    result = compile(SRNN, str(chip), None, calibration_steps=0)
    held = core_contents(result.placement)
    assert sum(n for per_core in held.values() for n in per_core.values()) == 72
    assert sorted(sum(per_core.values()) for per_core in held.values()) == [32, 40]
    assert {p for per_core in held.values() for p in per_core} == {"1.lif", "3"}


def test_quantization_errors_collects_every_error_measure_per_layer():
    rows = [{"population": "a", "weight_rel_error": 0.5, "notes": []},
            {"population": "b", "weight_rel_error": 0.25, "bias_rel_error": 0.125}]
    assert quantization_errors(rows) == (["a", "b"], {"bias_rel_error": [None, 0.125],
                                                      "weight_rel_error": [0.5, 0.25]})


def test_compile_report_is_one_self_contained_page_with_every_section(tmp_path):
    build = tmp_path / "build"
    assert main(["-q", "compile", str(SRNN), "--target", "loihi2", "-o", str(build),
                 "--report", "--calibration-steps", "10"]) == 0
    page = elements((build / "report.html").read_text())
    for section in SECTIONS:
        assert section in page.ids and f"{section}-figure" in page.ids
    assert {"summary", "core-table", "quantization-table"} <= set(page.ids)
    assert "rasters" not in page.ids
    assert len(page.images) == 4
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.links == []


def test_verify_report_adds_float_and_emulator_rasters_of_each_spiking_layer(verified_report):
    page = elements(verified_report.read_text())
    assert {"rasters", "verdict", "raster-1.lif-figure", "raster-3-figure"} <= set(page.ids)
    assert "bit-exact" in verified_report.read_text()


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("NIRC_REQUIRE_BROWSER") == "1":
        pytest.fail("NIRC_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
    return found


@pytest.mark.slow
def test_a_real_browser_renders_the_report_offline_with_every_picture(verified_report,
                                                                       tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (set NIRC_REQUIRE_BROWSER=1 to make this a failure)")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         verified_report.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    page = elements(dom)
    for section in SECTIONS + ["rasters"]:
        assert section in page.ids
    assert len(page.images) == 6            # graph, cores, traffic, quantization, 2 rasters
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
