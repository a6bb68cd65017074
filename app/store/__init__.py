"""Where the service keeps its state: message records, the opt-out list, Idempotency-Key
answers, webhook token ids and the rate limits' counters; in process memory or in Redis."""
