"""What every robot uses: browser session, retries, logging, credentials, evidence."""
