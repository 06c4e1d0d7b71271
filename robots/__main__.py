from robots.cli import main

main()
