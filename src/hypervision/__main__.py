from hypervision.cli import main

main()
