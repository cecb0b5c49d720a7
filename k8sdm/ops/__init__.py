"""The operations console: the Django admin as ops staff use it.

A dashboard that answers "is anything wrong?" in one look (k8sdm/ops/dashboard.py), records shown
read-only and readable (k8sdm/ops/display.py), and the few safe actions staff may take
(k8sdm/ops/services.py). The model admins themselves live in each app's admin.py.
"""
