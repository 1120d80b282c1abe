"""Tests of the pipe target model (hw/pipeline)."""
