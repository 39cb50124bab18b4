"""Simulated WinRM endpoints for the lab (WS-Management + PowerShell Remoting on loopback)."""
