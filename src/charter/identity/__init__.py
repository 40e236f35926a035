"""Root identities from mnemonics, derived keys and attestation chains."""
