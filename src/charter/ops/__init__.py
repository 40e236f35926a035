"""Operations: metrics, structured logs, health and readiness."""
