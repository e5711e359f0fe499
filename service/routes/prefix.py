PREFIX = "/v1"  # on each router, so a route's path template carries it (logs and metrics label by it)
