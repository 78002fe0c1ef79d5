"""The artifact stage: audit the assembled tree, pack it into its archive, describe it (SBOM, size table)."""
