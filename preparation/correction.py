"""The US EPA correction of PurpleAir PM2.5, as an extra field `pm2.5_epa`.

Source: Barkjohn, K. K., Gantt, B. and Clements, A. L. (2021), "Development and application of a
United States-wide correction for PM2.5 data collected with the PurpleAir sensor", Atmospheric
Measurement Techniques 14, 4617–4637, https://doi.org/10.5194/amt-14-4617-2021:

    PM2.5 = 0.524 × PA − 0.0862 × RH + 5.75        (µg/m³; PA = pm2.5_cf_1, RH in %)

fitted on 24-hour averages up to about 250 µg/m³. Above that (wildfire smoke) the sensor's
response is no longer linear. The extended correction (Barkjohn, Holder, Frederick & Clements
2022, "Correction and Accuracy of PurpleAir PM2.5 Measurements for Extreme Wildfire Smoke",
Sensors 22, 9669, https://doi.org/10.3390/s22249669), used on the AirNow Fire and Smoke Map,
keeps the 2021 equation up to a corrected 300 µg/m³ and moves to a quadratic fit above 400:

    PA < 570:          0.524 × PA − 0.0862 × RH + 5.75                  (300 at PA 570, RH 50 %)
    570 ≤ PA < 611:    w × Q + (1 − w) × (0.524 × PA − 0.0862 × RH + 5.75),  w = 0.0244 × PA − 13.9
    PA ≥ 611:          Q = 4.21e-4 × PA² + 0.392 × PA + 3.44             (400 at PA 611; no RH)

`extended=True` (the default) applies it, so `pm2.5_epa` is given at every concentration; with
`extended=False` the 2021 equation alone is applied up to `max_pm` (250) and `pm2.5_epa` is None
above. The formula is applied as published, unclipped: at very low PM and high humidity it can be
slightly negative.

It needs the reading's own humidity below PA 611. When humidity (or `pm2.5_cf_1`) is missing even
after imputation, or `pm2.5_cf_1` is above the valid range (2021 only), `pm2.5_epa` is None,
listed in the reading's `missing`, and `flags["pm2.5_epa"]` says why. When an input was imputed
(humidity from the sensor's last observed values), the correction is applied and `pm2.5_epa` is
listed in `imputed` too, so a value derived from an imputed one is never taken for a measured one.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

EPA_FIELD = "pm2.5_epa"
PM_FIELD = "pm2.5_cf_1"
RH_FIELD = "humidity"
#: Upper end of the concentrations the 2021 fit is documented for (µg/m³ of `pm2.5_cf_1`).
MAX_PM = 250.0
#: The 2022 extension: below `BLEND_FROM` the 2021 equation, from `BLEND_TO` the quadratic.
BLEND_FROM, BLEND_TO = 570.0, 611.0


def epa_pm25(pm25_cf1: float, humidity: float) -> float:
    """Barkjohn et al. (2021): 0.524 × pm2.5_cf_1 − 0.0862 × RH + 5.75.

    >>> round(epa_pm25(20.0, 50.0), 9)
    11.92
    """
    return 0.524 * pm25_cf1 - 0.0862 * humidity + 5.75


def epa_pm25_high(pm25_cf1: float) -> float:
    """Barkjohn et al. (2022), the quadratic for extreme smoke: 4.21e-4 × PA² + 0.392 × PA + 3.44.

    >>> round(epa_pm25_high(611.0), 1)
    400.1
    """
    return 4.21e-4 * pm25_cf1 * pm25_cf1 + 0.392 * pm25_cf1 + 3.44


def epa_pm25_extended(pm25_cf1: float, humidity: float | None) -> float | None:
    """Barkjohn et al. (2022): the 2021 equation below PA 570, the quadratic from 611, blended
    between; None when humidity is needed (below 611) and missing.

    >>> round(epa_pm25_extended(20.0, 50.0), 9), round(epa_pm25_extended(570.0, 50.0), 2)  # w 0.008
    (11.92, 300.63)
    >>> epa_pm25_extended(700.0, None) == epa_pm25_high(700.0)
    True
    """
    if pm25_cf1 >= BLEND_TO:
        return epa_pm25_high(pm25_cf1)
    if humidity is None:
        return None
    low = epa_pm25(pm25_cf1, humidity)
    if pm25_cf1 < BLEND_FROM:
        return low
    w = 0.0244 * pm25_cf1 - 13.9
    return w * epa_pm25_high(pm25_cf1) + (1.0 - w) * low


#: Why `pm2.5_epa` was not derived: the count tag's code and the reading's flag.
SKIPPED = {
    "no_pm": f"not applied: {PM_FIELD} missing",
    "no_humidity": f"not applied: {RH_FIELD} missing",
    "above_range": f"not applied: {PM_FIELD} above the valid range",
}


class EpaCorrection:
    """Derive `pm2.5_epa` from a reading's `pm2.5_cf_1` and humidity, or say why not.

    >>> epa = EpaCorrection()
    >>> value, code = epa.correct({"pm2.5_cf_1": 20.0, "humidity": 50.0})
    >>> round(value, 9), code
    (11.92, 'applied')
    >>> epa.correct({"pm2.5_cf_1": 20.0, "humidity": None})
    (None, 'no_humidity')
    """

    def __init__(self, max_pm: float = MAX_PM, extended: bool = True):
        self.extended = extended
        self.max_pm = float("inf") if extended else max_pm

    def correct(self, values: Mapping[str, float | None]) -> tuple[float | None, str]:
        """Return `(pm2.5_epa or None, code)`: `applied`, or a key of `SKIPPED`."""
        pm = values.get(PM_FIELD)
        rh = values.get(RH_FIELD)
        if pm is None:
            return None, "no_pm"
        if self.extended:
            value = epa_pm25_extended(pm, rh)
            return (None, "no_humidity") if value is None else (value, "applied")
        if rh is None:
            return None, "no_humidity"
        if pm > self.max_pm:
            return None, "above_range"
        return epa_pm25(pm, rh), "applied"

    def apply(
        self,
        values: MutableMapping[str, float | None],
        imputed: list[str],
        missing: list[str],
        flags: dict[str, str],
        counts: dict[str, int],
    ) -> None:
        """In the flow: set `values["pm2.5_epa"]`; list it in `imputed` when an input was
        imputed, or in `missing` with the reason in `flags` when it is None; count `epa:<code>`.

        >>> values, imputed, missing, flags, counts = {"pm2.5_cf_1": 300.0}, [], [], {}, {}
        >>> EpaCorrection().apply(values, imputed, missing, flags, counts)
        >>> values["pm2.5_epa"], missing, counts
        (None, ['pm2.5_epa'], {'epa:no_humidity': 1})
        >>> flags
        {'pm2.5_epa': 'not applied: humidity missing'}
        """
        pm, rh = values.get(PM_FIELD), values.get(RH_FIELD)
        if pm is not None and rh is not None and pm <= self.max_pm and pm < BLEND_FROM:  # usual
            values[EPA_FIELD] = 0.524 * pm - 0.0862 * rh + 5.75
            if imputed and (PM_FIELD in imputed or RH_FIELD in imputed):
                imputed.append(EPA_FIELD)
            counts["epa:applied"] = counts.get("epa:applied", 0) + 1
            return
        value, code = self.correct(values)
        values[EPA_FIELD] = value
        if value is None:
            missing.append(EPA_FIELD)
            flags[EPA_FIELD] = SKIPPED[code]
        elif PM_FIELD in imputed or (RH_FIELD in imputed and values[PM_FIELD] < BLEND_TO):
            imputed.append(EPA_FIELD)  # from PA 611 on, humidity is not used
        tag = "epa:" + code
        counts[tag] = counts.get(tag, 0) + 1
