"""What every layer shares and nothing else: the records that cross layers (dead letters and
their bounded raw form, the JSON line they are written as), the redaction every message passes
through, the configuration error and the progress log's handler. It imports no project folder."""
