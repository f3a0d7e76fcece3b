"""What runs without a person: the freshness policy, refresh job, schedule and sensors, and the
alerts they send."""
