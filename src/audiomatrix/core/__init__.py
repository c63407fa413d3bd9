"""What every stage uses: atomic files, hashes, the machine cache and the one error root."""
