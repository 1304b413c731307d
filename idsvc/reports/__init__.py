"""Reports a ministry reads: read-only views over the register and the payroll checks.

- ``controls``: the monthly payroll-controls report (data: ``build_report``);
- ``controls_output``: the same report as JSON, CSV and one self-contained HTML page.
"""
