"""What every layer shares and nothing else: the records that cross layers (`Reading`,
`DeadLetter`, a dead letter's bounded raw form and the JSON line records are written as), the
redaction every message passes through, the configuration error and the log's stderr handler.
It imports no other project folder."""
