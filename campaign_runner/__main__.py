from campaign_runner.cli import main

main()
