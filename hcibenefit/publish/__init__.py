"""Sending sweep results elsewhere: Azure Monitor Logs (``sweep --publish azure-monitor``).

``rows`` turns a stored run into the table's rows (pure); ``azure_monitor`` sends them through the Logs
Ingestion API and imports azure-monitor-ingestion inside its functions only; ``pending`` keeps every run
in history until it is sent, so a failed publication is retried by the next run.
"""
