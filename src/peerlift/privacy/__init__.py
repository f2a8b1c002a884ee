"""A person's rights over their data: download it all, delete the account, and retention."""
