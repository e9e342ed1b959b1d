"""Pure mappings from each platform's payload to a DistributionRequest (no Flask, Redis, HTTP)."""
