from mm15.cli import main

main()
