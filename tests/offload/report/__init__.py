"""Tests of offload.report: evidence gathering, rendering, the command, Chromium rendering."""
