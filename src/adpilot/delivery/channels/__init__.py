"""Built-in delivery channels: ``file`` (offline outbox), ``smtp`` (e-mail), ``webhook``
(SMS and push gateways)."""
