"""cocotb testbenches: one folder per DUT, ``<dut>/test_<dut>.py`` (see rtl_models.runner)."""
