"""`commsdesk demo`: the whole product offline, in a browser, in one command
(`bot.demo.runner.run_demo`)."""
