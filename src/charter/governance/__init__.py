"""Governance: the constitution, members' signed proposals and ballots, and their actions.

Every decision about who takes part, and under which rules, is a ledger transaction:
a command (app ``"gov"``) carrying a member's signed request, which every node's
``GovernanceHandler`` checks and resolves the same way. See docs/governance.md.
"""
