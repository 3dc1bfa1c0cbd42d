"""What every sensor's stages are built from: the imputer and detector settings, the quality-
control rules, the threshold. The engine reads it (`columns.logic`), as does the per-sensor
reference chain (`tests/sensor_chain.py`); it is never part of a snapshot (the stages it builds
are)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detectors.base import Detector
from detectors.hst import HalfSpaceTreesDetector
from imputers.window import WindowImputer
from preparation.aqi import NowCast
from preparation.channels import ChannelAgreement
from preparation.correction import EpaCorrection
from preparation.flatline import SECONDS as FLATLINE_SECONDS
from preparation.flatline import Flatline
from preparation.gaps import GapLogic, GapTracker
from preparation.incidents import SensorIncidents
from preparation.scaling import Standardiser
from preparation.validation import RangeValidator


class SensorConfig:
    """What every key's logic is built from: imputer and detector settings, the threshold."""

    def __init__(
        self,
        impute_fields: Sequence[str],
        window: int,
        strategy: str,
        threshold: float,
        detector: Mapping[str, Any] | Callable[[], Detector],
        *,
        validator: RangeValidator | None = None,
        epa: EpaCorrection | None = None,
        scale_fields: Sequence[str] = (),
        scale_window: int | None = None,
        gaps: Callable[[GapTracker | None], GapLogic] | None = None,
        channels: ChannelAgreement | None = None,
        flatline: int | None = None,
        flatline_seconds: int = FLATLINE_SECONDS,
        nowcast: bool = False,
        report_faults: bool = True,
        count_alerts: bool = True,
        incidents: int | None = None,
    ):
        self.impute_fields = tuple(impute_fields)
        self.window = window
        self.strategy = strategy
        self.threshold = threshold
        # a detector factory, or HalfSpaceTreesDetector's options
        self.detector = detector if callable(detector) else dict(detector)
        self.validator = validator  # preparation: out-of-range values become missing
        self.epa = epa  # preparation: the EPA PM2.5 correction, after imputation
        self.scale_fields = tuple(scale_fields)  # preparation: z-scores, before scoring
        self.scale_window = scale_window
        self.gaps = gaps  # preparation: builds a key's gap tracking, from its resume state
        self.channels = channels  # quality control: a template, copied for each key
        self.flatline = flatline  # quality control: readings in a row, or None (off)
        self.flatline_seconds = flatline_seconds  # ... covering at least this time
        self.nowcast = nowcast  # the NowCast and AQI of pm2.5_epa, as fields
        self.report_faults = report_faults  # a reading a rule flags is an alert, whatever its score
        self.count_alerts = count_alerts  # False when a later stage decides (the area stage)
        self.incidents = incidents  # seconds clean that close a fault incident; None: none
        self.new_qc()
        self.new_scaler()
        self.new_imputer()  # fail at build time on a bad configuration
        self.new_detector()

    def new_imputer(self) -> WindowImputer:
        return WindowImputer(self.impute_fields, self.window, self.strategy)

    def new_detector(self) -> Detector:
        if callable(self.detector):
            return self.detector()
        return HalfSpaceTreesDetector(**self.detector)

    def new_gaps(self, resume: GapTracker | None = None) -> GapLogic | None:
        return None if self.gaps is None else self.gaps(resume)

    def new_qc(
        self,
    ) -> tuple[ChannelAgreement | None, Flatline | None, NowCast | None, SensorIncidents | None]:
        """A key's quality-control state: channel check, flatline rule, NowCast and fault
        incidents (each or None)."""
        return (
            None if self.channels is None else self.channels.copy(),
            None if self.flatline is None else Flatline(self.flatline, self.flatline_seconds),
            NowCast() if self.nowcast else None,
            None if self.incidents is None else SensorIncidents(self.incidents),
        )

    def new_scaler(self) -> Standardiser | None:
        if not self.scale_fields:
            return None
        return Standardiser(self.scale_fields, window=self.scale_window)
