"""TODO map."""
# payroll (was idsvc/bank/payroll.py)
# change_feed (was idsvc/bank/change_feed.py)
# change_events (was idsvc/bank/change_events.py)
# webhooks (was idsvc/bank/webhooks.py)
# webhook_delivery (was idsvc/bank/webhook_delivery.py)
# server_secret (was idsvc/bank/server_secret.py)
