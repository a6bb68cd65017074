"""The adapter to Vonage's Messages API: its application JWT, our HTTP transport, and the
gateway that sends one SMS and says what Vonage's answer means."""
