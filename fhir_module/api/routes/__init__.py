"""One router per concern: discovery, service calls, feedback, health."""
