"""Data preparation in the stream, per sensor, learning only from the past: validation, the EPA
PM2.5 correction, missing time steps, standardisation and reservoir sampling."""
