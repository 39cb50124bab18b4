"""The lab's Azure Resource Manager and Resource Graph, served over HTTPS on loopback.

``spec`` holds the fleet spec's Azure keys, ``model`` derives ARM resources from the live fleet
state (so a host-side change shows in Azure the way a sync would carry it), ``server`` answers the
real azure-mgmt clients: Resource Graph queries with paging and throttling, single ARM reads with
api-version handling, bearer tokens.
"""
