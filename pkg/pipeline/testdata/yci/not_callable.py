test_generator = ['./test.sh']
