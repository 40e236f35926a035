"""Keys, signatures and certificates, built on the ``cryptography`` package."""
