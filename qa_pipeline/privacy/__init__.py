"""Personal data in transcripts: found (detect.py), replaced by its type in everything written (redact.py), the
original text kept only where configured, owner-only (restricted.py).

Layer: between analysis and scoring. The analysis runs on the words as transcribed, in memory; the pipeline
(pipeline/protect.py) redacts the rows before they are written. Nothing here keeps loaded things in module
globals: `PrivacyResources` holds the analyzer and is built by the caller's ResourcePool."""
