"""The bank side: payroll checks, the change feed, webhooks.

Modules, one job each:

- ``use_cases``         ``Bank``, the feature, over the server keys (made on first use)
- ``payroll``           payroll checks: is each person about to be paid active?
- ``payroll_controls``  the ghost-worker flags of a batch, found for all items at once
- ``payroll_reasons``   the payroll answer's reason codes, and what a bank does about each
- ``change_feed``       status changes in commit order, and the webhook outbox
- ``change_events``     the feed's event types, free of the storage layer
- ``webhooks``          webhook subscriptions and Standard Webhooks signatures
- ``webhook_delivery``  the deliverer: drains the outbox, at least once
- ``server_secret``     the server secret and the keys derived from it
"""
