"""What the CLI shows while compiling: stage progress on a terminal, nothing per stage in a pipe,
and a fit failure explained in an error line plus two hint lines."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
import yaml

from nirc.cli import main
from nirc.driver import compile
from nirc.progress import DRIVER_LOGGER, StageProgress, install, uninstall

ROOT = Path(__file__).resolve().parents[1]
SRNN = ROOT / "examples" / "srnn.nir"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def reset_driver_logger():
    yield
    uninstall()


def test_piped_output_shows_no_stages():
    assert install(quiet=False, verbose=False, stream=io.StringIO()) is None
    assert not logging.getLogger(DRIVER_LOGGER).isEnabledFor(logging.INFO)
    assert logging.getLogger(DRIVER_LOGGER).isEnabledFor(logging.WARNING)


def test_verbose_and_quiet_leave_the_driver_to_the_root_logger():
    for quiet, verbose in ((False, True), (True, False)):
        assert install(quiet=quiet, verbose=verbose, stream=Terminal()) is None
        driver = logging.getLogger(DRIVER_LOGGER)
        assert driver.level == logging.NOTSET and driver.propagate
        assert not any(isinstance(h, StageProgress) for h in driver.handlers)


def test_a_terminal_sees_every_stage_with_its_time():
    screen = Terminal()
    handler = install(quiet=False, verbose=False, stream=screen)
    assert isinstance(handler, StageProgress)
    result = compile(SRNN, "loihi2", None, calibration_steps=5)
    handler.close()
    shown = screen.getvalue()
    for stage in result.timings:
        assert re.search(rf"  {stage} +\d+\.\d{{3}} s", shown), stage
    assert "compiling: partition" in shown


@pytest.fixture
def small_chip(tmp_path) -> Path:
    """loihi2 cut down to two cores of 30 neurons: too small for the 72-neuron srnn."""
    data = yaml.safe_load((ROOT / "targets" / "loihi2.yaml").read_text())
    data["name"] = "small_chip"
    data["cores"]["count"] = 2
    data["cores"]["limits"]["neurons"] = 30
    chip = tmp_path / "small_chip.yaml"
    chip.write_text(yaml.safe_dump(data))
    return chip


def test_a_fit_failure_is_one_error_line_and_two_hints(small_chip, tmp_path, capsys):
    chip = small_chip
    assert main(["compile", str(SRNN), "--target", str(chip), "-o", str(tmp_path / "b")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert err == [
        "error: the network needs at least 72 neurons of 'neurons' but the 2 cores of "
        "small_chip have 60; the largest demand is layer '1.lif' with 64 neurons; use fewer "
        "neurons per layer, or a chip with more cores",
        "  why: the model is valid, but the chip is too small for it. 'neurons' counts neurons "
        "(compartments) placed on the core [neurons], a limit of one core in the target file.",
        f"  next: 'nirc targets show {chip}' lists every limit; 'nirc targets' lists other "
        "chips; or make the layer named above smaller or sparser."]
    assert not (tmp_path / "b").exists()


def test_quiet_keeps_only_the_error_line(small_chip, tmp_path, capsys):
    assert main(["-q", "compile", str(SRNN), "--target", str(small_chip), "-o",
                 str(tmp_path / "b")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and err[0].startswith("error: ")


def test_the_cli_gives_the_driver_logger_back_when_done(tmp_path):
    assert main(["compile", str(SRNN), "--target", "loihi2", "-o", str(tmp_path / "b"),
                 "--calibration-steps", "0"]) == 0
    driver = logging.getLogger(DRIVER_LOGGER)
    assert driver.level == logging.NOTSET and driver.propagate and not driver.handlers
